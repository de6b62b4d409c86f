#!/usr/bin/env bash
# `make <stage>`: apply a stage and measure it. Every command is printed before it runs ("+ ..."), so the terminal
# shows what a stage change is: one `kubectl apply`, a wait until the gateway serves it, a measurement.
#
#   scripts/stage.sh <stage>
#
# TARGET=cluster (default): the stage's file (API=virtualservice: istio/stages/<stage>.yaml, the default;
# API=gateway-api: istio/stages/gateway-api/<stage>.yaml) is linted against the chart, applied with kubectl, then
# the ingress gateway is probed until its answers name the stage (every route sets the response header
# x-rollouts-stage to it: Envoy gets the new routes a moment after the apply, not at once), then scripts/verify.sh
# measures it (k6). Everything about the stage is asked of the CLI (`rollout field`), none of it parsed here.
# TARGET=local: `rollout apply <stage> --target local` (the local gateway).
#
# Knobs: STAGE_TIMEOUT seconds to wait for the gateway (90), SKIP_VERIFY=1 to apply without measuring,
# STAGE_PROBES consecutive probes that must report the stage (3).
set -o errexit -o nounset -o pipefail

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

STAGE_TIMEOUT="${STAGE_TIMEOUT:-90}"
STAGE_PROBES="${STAGE_PROBES:-3}"
SKIP_VERIFY="${SKIP_VERIFY:-0}"

STAGE=""
MANIFEST=""
STAGE_HEADER=""
LAST_SEEN=""

usage() {
  die_usage "usage: scripts/stage.sh <stage>   (the stages: 'make stages' or 'rollout stages')"
}

# gateway_serves STAGE: STAGE_PROBES probes in a row come back with the stage header set to STAGE.
gateway_serves() {
  local want="$1" i
  for ((i = 0; i < STAGE_PROBES; i++)); do
    LAST_SEEN="$(response_header "${STAGE_HEADER}")"
    [[ "${LAST_SEEN}" == "${want}" ]] || return 1
  done
}

dump_stage_state() {
  log "last ${STAGE_HEADER} seen at ${GATEWAY_URL}/${GATEWAY_HOST:+ (Host: ${GATEWAY_HOST})}: '${LAST_SEEN}'"
  kube -n "${NAMESPACE}" get "${STAGE_RESOURCE}" -o yaml || true
  istio_kube proxy-status || true
  kube -n "${ISTIO_NAMESPACE}" get pods -o wide || true
}

main() {
  (($# == 1)) || usage
  STAGE="$1"
  require_target
  require_api
  if [[ "${TARGET}" == local ]]; then
    show rollout apply "${STAGE}" --target local
    return
  fi

  # The CLI knows the stages; an unknown one exits 2 with the list, before any cluster call.
  local rc=0
  MANIFEST="$(rollout field "${STAGE}" file --api "${API}")" || rc=$?
  ((rc == 0)) || exit "${rc}"
  STAGE_HEADER="$(rollout field "${STAGE}" stage-header --api "${API}")"
  [[ -n "${STAGE_HEADER}" ]] ||
    die "${MANIFEST#"${REPO_ROOT}/"}: no response header is set to '${STAGE}' on every route, so the gateway cannot be watched ('rollout lint --stage ${STAGE} --api ${API}' says which route lacks x-rollouts-stage)"
  use_gateway_host_of "${STAGE}"
  stage_resource

  local tools=(kubectl curl)
  [[ "${SKIP_VERIFY}" == 1 ]] || tools+=(k6)
  require_tools "${tools[@]}"
  require_cluster
  require_cluster_api

  local start=${SECONDS} file="${MANIFEST#"${REPO_ROOT}/"}"
  log "stage ${STAGE} on ${KUBE_CONTEXT} (API=${API}): ${file}"
  show rollout lint --stage "${STAGE}" --api "${API}"
  show kubectl --context "${KUBE_CONTEXT}" apply -f "${file}"
  local labelled
  labelled="$(applied_stage)"
  [[ "${labelled}" == "${STAGE}" ]] ||
    die "${file} labels ${STAGE_RESOURCE} rollouts/stage='${labelled}', expected '${STAGE}'"
  log "+ curl -sI ${GATEWAY_URL}/${GATEWAY_HOST:+ -H \"Host: ${GATEWAY_HOST}\"}   until ${STAGE_PROBES} answers in a row carry ${STAGE_HEADER}: ${STAGE} (at most ${STAGE_TIMEOUT}s)"
  local waited=${SECONDS}
  wait_until "the gateway to serve stage ${STAGE} (${STAGE_HEADER})" "${STAGE_TIMEOUT}" dump_stage_state \
    gateway_serves "${STAGE}"
  log "  the gateway serves ${STAGE} ($((SECONDS - waited))s after the apply)"
  if [[ "${SKIP_VERIFY}" == 1 ]]; then
    log "stage ${STAGE} applied in $((SECONDS - start))s (not measured: SKIP_VERIFY=1)"
    return 0
  fi
  show scripts/verify.sh
  log "stage ${STAGE} applied and verified in $((SECONDS - start))s"
}

main "$@"
