#!/usr/bin/env bash
# `make <stage>`: apply istio/stages/<stage>.yaml and verify it.
#
#   scripts/stage.sh <stage>
#
# TARGET=cluster (default): the name is checked by the CLI (`rollout path`; an unknown stage exits 2 with the list
# of valid ones before any cluster call), `rollout lint --stage <stage>` (that stage's file and istio/base only, so
# a broken file of another stage never blocks `make rollback` or `make stable`), `kubectl apply`, a bounded wait
# until the ingress gateway answers with the stage's response header (every route of a stage sets one to the
# stage name, x-rollouts-stage, which the stages lint enforces; its name is read from `rollout expect <stage>
# --json`, not written here), then scripts/verify.sh (k6). The applied stage is recorded only in the cluster
# (label rollouts/stage of VirtualService webapp). The probes send a Host the VirtualService lists when
# GATEWAY_URL's host is not one of its hosts (Istio answers 404 to any other).
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
# Response header every route of the stage's VirtualService sets to the stage name (headers.response.set), from
# `rollout expect <stage> --json` (stage_header).
STAGE_HEADER=""

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

# stage_header STAGE: the response header whose value is STAGE in the responseHeaders of `rollout expect STAGE
# --json` (the headers the matched route sets). The JSON is read as a stream of strings and braces, so its layout
# does not matter.
stage_header() {
  local want="$1" json
  json="$(rollout expect "${want}" --json)" || exit $?
  printf '%s\n' "${json}" |
    grep -oE '"([^"\\]|\\.)*"|[{}]' |
    awk -v want="\"${want}\"" '
      $0 == "\"responseHeaders\"" { in_rh = 1; depth = 0; key = ""; next }
      !in_rh { next }
      $0 == "{" { depth++; next }
      $0 == "}" { if (--depth <= 0) in_rh = 0; next }
      depth == 1 {
        if (key == "") { key = $0; next }
        if ($0 == want) { gsub(/"/, "", key); print tolower(key); exit }
        key = ""
      }
    '
}

dump_stage_state() {
  log "last ${STAGE_HEADER} seen at ${GATEWAY_URL}/${GATEWAY_HOST:+ (Host: ${GATEWAY_HOST})}: '${LAST_SEEN}'"
  kube -n "${NAMESPACE}" get virtualservice webapp -o yaml || true
  istio_kube proxy-status || true
  kube -n "${ISTIO_NAMESPACE}" get pods -o wide || true
}

STAGE=""
MANIFEST=""

lint() {
  rollout lint --stage "${STAGE}"
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
  wait_until "the gateway to serve stage ${STAGE} (${STAGE_HEADER})" "${STAGE_TIMEOUT}" dump_stage_state \
    gateway_serves "${STAGE}"
  STEP_RESULT="${STAGE_PROBES} probes answered by stage ${STAGE}"
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
  STAGE_HEADER="$(stage_header "${STAGE}")"
  [[ -n "${STAGE_HEADER}" ]] ||
    die "rollout expect ${STAGE} --json lists no response header set to '${STAGE}' on every route: the gateway cannot be watched (run 'rollout lint --stage ${STAGE}': every route must set x-rollouts-stage)"
  use_gateway_host_of "${MANIFEST}"

  local tools=(kubectl curl)
  [[ "${SKIP_VERIFY}" == 1 ]] || tools+=(k6)
  require_tools "${tools[@]}"
  require_cluster

  local start=${SECONDS}
  step "lint stage ${STAGE} and istio/base against the chart" lint
  step "apply ${MANIFEST} (context ${KUBE_CONTEXT})" apply_manifest
  step "wait until ${GATEWAY_URL} serves ${STAGE} (${STAGE_HEADER})" wait_served
  if [[ "${SKIP_VERIFY}" == 1 ]]; then
    log "stage ${STAGE} applied in $((SECONDS - start))s (not verified: SKIP_VERIFY=1)"
    return 0
  fi
  "${SCRIPTS_DIR}/verify.sh"
  log "stage ${STAGE} applied and verified in $((SECONDS - start))s"
}

main "$@"
