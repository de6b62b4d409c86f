#!/usr/bin/env bash
# `make <stage>`: apply istio/stages/<stage>.yaml and verify it.
#
#   scripts/stage.sh <stage>
#
# TARGET=cluster (default): the name is checked by the CLI (`rollout path`; an unknown stage exits 2 with the list
# of valid ones before any cluster call), `rollout lint`, `kubectl apply`, a bounded wait until the ingress gateway
# serves the new stage, then scripts/verify.sh (k6). The applied stage is recorded only in the cluster (label
# rollouts/stage of VirtualService webapp).
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
# Response header every route of a stage's VirtualService sets to the stage name (headers.response.set).
STAGE_HEADER=x-rollouts-stage

usage() {
  die_usage "usage: scripts/stage.sh <stage>   (the stages: 'make stages' or 'rollout stages')"
}

LAST_SEEN=""
# gateway_serves STAGE: STAGE_PROBES probes in a row come back with the stage header set to STAGE.
gateway_serves() {
  local want="$1" i
  for ((i = 0; i < STAGE_PROBES; i++)); do
    LAST_SEEN="$(response_header "${STAGE_HEADER}")"
    [[ "${LAST_SEEN}" == "${want}" ]] || return 1
  done
}

# proxies_synced: the ingress gateway is listed and no proxy is STALE (behind istiod). Fallback for a manifest
# without the stage header. ("NOT SENT" is normal: a config type istiod has nothing of, e.g. ECDS.)
LAST_PROXY_STATUS=""
proxies_synced() {
  LAST_PROXY_STATUS="$(istio_kube proxy-status 2>&1)" || return 1
  printf '%s\n' "${LAST_PROXY_STATUS}" | grep -q ingressgateway || return 1
  ! printf '%s\n' "${LAST_PROXY_STATUS}" | grep -q STALE
}

dump_stage_state() {
  log "last ${STAGE_HEADER} seen at ${GATEWAY_URL}/: '${LAST_SEEN}'"
  kube -n "${NAMESPACE}" get virtualservice webapp -o yaml || true
  istio_kube proxy-status || true
  kube -n "${ISTIO_NAMESPACE}" get pods -o wide || true
}

STAGE=""
MANIFEST=""

lint() {
  rollout lint
  STEP_RESULT="clean"
}

apply_manifest() {
  kube apply -f "${MANIFEST}"
  local labelled
  labelled="$(applied_stage)"
  [[ "${labelled}" == "${STAGE}" ]] ||
    die "${MANIFEST} labels VirtualService webapp rollouts/stage='${labelled}', expected '${STAGE}'"
  STEP_RESULT="applied"
}

wait_served() {
  if grep -q "${STAGE_HEADER}" "${MANIFEST}"; then
    wait_until "the gateway to serve stage ${STAGE} (${STAGE_HEADER})" "${STAGE_TIMEOUT}" dump_stage_state \
      gateway_serves "${STAGE}"
    STEP_RESULT="${STAGE_PROBES} probes answered by stage ${STAGE}"
  else
    warn "${MANIFEST} sets no ${STAGE_HEADER} response header; waiting on 'istioctl proxy-status' instead (weaker)"
    wait_until "every proxy to be in sync with istiod" "${STAGE_TIMEOUT}" dump_stage_state proxies_synced
    STEP_RESULT="proxies in sync"
  fi
}

main() {
  (($# == 1)) || usage
  STAGE="$1"
  require_target
  if [[ "${TARGET}" == local ]]; then
    rollout apply "${STAGE}" --target local
    return
  fi

  # The CLI knows the stages (istio/stages/*.yaml); its message and exit code (2) are passed on as they are.
  local rc=0
  MANIFEST="$(rollout path "${STAGE}")" || rc=$?
  ((rc == 0)) || exit "${rc}"
  [[ -f "${MANIFEST}" ]] || die "rollout path ${STAGE} gave '${MANIFEST}', which is not a file"

  local tools=(kubectl curl)
  [[ "${SKIP_VERIFY}" == 1 ]] || tools+=(k6)
  require_tools "${tools[@]}"
  require_cluster

  local start=${SECONDS}
  step "lint istio/ against the chart" lint
  step "apply ${MANIFEST} (context ${KUBE_CONTEXT})" apply_manifest
  step "wait until ${GATEWAY_URL} serves ${STAGE}" wait_served
  if [[ "${SKIP_VERIFY}" == 1 ]]; then
    log "stage ${STAGE} applied in $((SECONDS - start))s (not verified: SKIP_VERIFY=1)"
    return 0
  fi
  "${SCRIPTS_DIR}/verify.sh"
  log "stage ${STAGE} applied and verified in $((SECONDS - start))s"
}

main "$@"
