#!/usr/bin/env bash
# `make down`: delete the kind cluster and everything in it (a no-op, with a message, when it does not exist).
# Knobs: CLUSTER_NAME (default: defaults.env).
set -o errexit -o nounset -o pipefail

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

delete_cluster() {
  local clusters
  clusters="$(kind get clusters 2>&1)" ||
    die "kind cannot list clusters (${clusters}). Is Docker running? $(tool_hint docker)"
  if printf '%s\n' "${clusters}" | grep -qxF "${CLUSTER_NAME}"; then
    kind delete cluster --name "${CLUSTER_NAME}"
    STEP_RESULT="deleted"
  else
    STEP_RESULT="absent, nothing to delete"
  fi
}

main() {
  (($# == 0)) || die_usage "usage: scripts/cluster-down.sh   (CLUSTER_NAME=${CLUSTER_NAME})"
  require_tools kind
  step "delete kind cluster ${CLUSTER_NAME}" delete_cluster
}

main "$@"
