#!/usr/bin/env bash
# `make rollback`: all traffic back to the stable version, verified.
#
# TARGET=cluster (default): reads the applied stage from the cluster (label rollouts/stage of the route object of
# API: VirtualService webapp, or HTTPRoute webapp), asks the CLI where it rolls back to (`rollout rollback-target`: `green` after a blue-green stage, else
# `stable`) and applies that stage with scripts/stage.sh (apply, wait, verify).
# TARGET=local: `rollout rollback --target local`.
set -o errexit -o nounset -o pipefail

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

main() {
  (($# == 0)) || die_usage "usage: scripts/rollback.sh   (rolls the applied stage back; see 'make status')"
  require_target
  require_api
  if [[ "${TARGET}" == local ]]; then
    rollout rollback --target local
    return
  fi

  require_cluster
  local applied target rc=0
  applied="$(applied_stage)"
  [[ -n "${applied}" ]] ||
    die "no stage is applied in ${KUBE_CONTEXT}, nothing to roll back: apply one with 'make stable' or 'make green'"
  target="$(rollout rollback-target "${applied}")" || rc=$?
  ((rc == 0)) || exit "${rc}"
  [[ -n "${target}" ]] || die "rollout rollback-target ${applied} printed nothing"
  log "rollback: ${applied} -> ${target}"
  exec "${SCRIPTS_DIR}/stage.sh" "${target}"
}

main "$@"
