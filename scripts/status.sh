#!/usr/bin/env bash
# `make status`: which stage is applied, and its expected split.
#
# TARGET=cluster (default): the label rollouts/stage (and rollouts/strategy) of the route object in namespace
# rollouts (VirtualService webapp; HTTPRoute webapp with API=gateway-api), then `rollout expect <stage>`. No cluster or no stage: a clear message and exit 1.
# TARGET=local: `rollout status --target local`.
set -o errexit -o nounset -o pipefail

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

main() {
  (($# == 0)) || die_usage "usage: scripts/status.sh"
  require_target
  require_api
  if [[ "${TARGET}" == local ]]; then
    rollout status --target local
    return
  fi

  require_cluster
  stage_resource
  local stage strategy
  stage="$(applied_stage)"
  [[ -n "${stage}" ]] ||
    die "cluster ${KUBE_CONTEXT} is up but no stage is applied (${STAGE_RESOURCE} not found): run 'make stable'"
  strategy="$(kube -n "${NAMESPACE}" get "${STAGE_RESOURCE}" -o 'jsonpath={.metadata.labels.rollouts/strategy}')"
  printf 'cluster:       %s (context %s)\n' "${CLUSTER_NAME}" "${KUBE_CONTEXT}"
  printf 'gateway:       %s\n' "${GATEWAY_URL}"
  printf 'API:           %s (%s)\n' "${API}" "${STAGE_RESOURCE}"
  printf 'applied stage: %s (strategy %s)\n\n' "${stage}" "${strategy:-unknown}"
  rollout expect "${stage}"
}

main "$@"
