#!/usr/bin/env bash
# `make verify`: measure the applied stage through the gateway and fail when the observed split does not match.
#
# TARGET=cluster (default): reads the applied stage from the cluster (label rollouts/stage of VirtualService
# webapp), writes `rollout expect <stage> --json` (expected split per request profile + sample plan) to a temp
# file and runs `k6 run loadtest/split.ts` with it (EXPECT_FILE). k6 prints the table and writes
# .state/verify/k6-<stage>.json; a breached threshold is a non-zero exit. When GATEWAY_URL's host is not one of
# the stage manifest's VirtualService hosts (Istio answers 404 to those), k6 gets GATEWAY_HOST, a host it lists,
# to send as Host. k6 also gets ANALYSIS_FILE (analysis.yaml, or ROLLOUT_ANALYSIS as the CLI reads it): its
# per-version thresholds hold every answering version's 5xx share and p99 to the canary analysis' SLOs (a missing
# file is said, and k6 checks the split only).
# TARGET=local: `rollout verify --target local`.
#
# Knobs: GATEWAY_URL, VERIFY_STAGE (measure as this stage instead of the applied one: only to diagnose), K6_ARGS
# (extra k6 flags, split on spaces).
set -o errexit -o nounset -o pipefail

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

K6_SCRIPT=loadtest/split.ts
# k6 imports the statistics from the built package by relative path (loadtest/split.ts).
SPLIT_CHECK_DIST=packages/split-check/dist/index.js

main() {
  (($# == 0)) || die_usage "usage: scripts/verify.sh   (measures the applied stage; see 'make status')"
  require_target
  if [[ "${TARGET}" == local ]]; then
    rollout verify --target local
    return
  fi

  require_tools kubectl k6
  [[ -f "${SPLIT_CHECK_DIST}" ]] || die "${SPLIT_CHECK_DIST} is missing (k6 imports it): run 'make build'"
  require_cluster

  local stage="${VERIFY_STAGE:-}"
  if [[ -z "${stage}" ]]; then
    stage_resource
    stage="$(applied_stage)"
    [[ -n "${stage}" ]] || die "no stage is applied in ${KUBE_CONTEXT} (${STAGE_RESOURCE} not found): run 'make stable'"
  fi

  local manifest
  manifest="$(rollout path "${stage}")"
  use_gateway_host_of "${manifest}"

  local expect rc=0
  expect="$(mktemp "${TMPDIR:-/tmp}/rollouts-expect.XXXXXX")"
  add_cleanup rm -f "${expect}"
  rollout expect "${stage}" --json >"${expect}" || rc=$?
  ((rc == 0)) || exit "${rc}"

  mkdir -p "${STATE_DIR}/verify"
  local summary="${STATE_DIR}/verify/k6-${stage}.json"
  local analysis="${ROLLOUT_ANALYSIS:-${REPO_ROOT}/analysis.yaml}" analysis_env=()
  if [[ -f "${analysis}" ]]; then
    analysis_env=(-e "ANALYSIS_FILE=${analysis}")
  else
    warn "${analysis} not found: k6 checks the split only (no per-version error and p99 thresholds)"
  fi
  local extra=()
  [[ -z "${K6_ARGS:-}" ]] || read -r -a extra <<<"${K6_ARGS}"

  log ">>> verify stage ${stage} through ${GATEWAY_URL} (k6 ${K6_SCRIPT})"
  local start=${SECONDS}
  rc=0
  k6 run --quiet --no-usage-report \
    -e "EXPECT_FILE=${expect}" \
    -e "GATEWAY_URL=${GATEWAY_URL}" \
    -e "GATEWAY_HOST=${GATEWAY_HOST}" \
    -e "STAGE=${stage}" \
    -e "SUMMARY_FILE=${summary}" \
    ${analysis_env[@]+"${analysis_env[@]}"} \
    ${extra[@]+"${extra[@]}"} \
    "${K6_SCRIPT}" || rc=$?
  if ((rc != 0)); then
    log "<<< verify stage ${stage}: FAILED (k6 exit ${rc}; 99 = a threshold crossed: split, failed requests, a header route, or a version's 5xx / p99 SLO) ($((SECONDS - start))s)"
    log "    summary: ${summary}"
    exit 1
  fi
  log "<<< verify stage ${stage}: passed ($((SECONDS - start))s); summary: ${summary}"
}

main "$@"
