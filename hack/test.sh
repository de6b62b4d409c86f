#!/usr/bin/env bash
# The whole test suite (`make test`, `.ci/run`). Installs what it needs, runs every suite even when one fails,
# collects JUnit XML in .test-results/ and ends with one line: "N passed, N failed".
#
#   workspace   turbo: build, typecheck (k6 scripts included), lint, vitest (Node 20)
#   node24      vitest again on Node 24, the image's runtime
#   chart       helm lint/template, helm-unittest, kubeconform, checkov, schema cases   (hack/test-chart.sh)
#   istio       istioctl validate + analyze, stage lint against the rendered chart      (hack/test-istio.sh)
#   scripts     shellcheck + bats with stub binaries                                    (hack/test-scripts.sh)
#   demo        `make demo`: every stage through the local gateway with real traffic
#   prometheus  the three-way check: a real Prometheus (Debian's) scrapes the demo; the cluster path's PromQL must
#               count what the verifier and the apps counted, request for request     (hack/test-prometheus.sh)
#   oracle      go test of the Istio oracle (tooling/istio-oracle: Istio's control-plane code on small fixtures)
#   fresh       a clean clone of HEAD with pnpm and turbo hidden: `make demo`, `make lint` (hack/test-fresh-clone.sh)
#
# SUITES="workspace chart" hack/test.sh runs a subset.
set -o errexit -o nounset -o pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${REPO_ROOT}"
# shellcheck source=versions.env
source versions.env

export TEST_RESULTS_DIR="${REPO_ROOT}/.test-results"
export PATH="${REPO_ROOT}/bin:${PATH}"
export FORCE_COLOR=0 NO_COLOR=1 TURBO_TELEMETRY_DISABLED=1 DO_NOT_TRACK=1
PNPM="${REPO_ROOT}/scripts/pnpm.sh"
SUITES="${SUITES:-workspace node24 chart istio oracle scripts demo prometheus fresh}"

rm -rf "${TEST_RESULTS_DIR}"
mkdir -p "${TEST_RESULTS_DIR}"

# shellcheck source=hack/junit.sh
source hack/junit.sh

# A suite that exits non-zero without a failure in its JUnit (a crash, a lint error, a build error) still counts:
# it gets a failed testcase of its own, carrying the tail of its log.
record_exit() {
  local suite="$1" rc="$2" seconds="$3" log="$4"
  junit_init harness
  if ((rc == 0)); then
    junit_record suite "${suite} suite completes" "${seconds}" ok "${log}" "" >/dev/null
  else
    junit_record suite "${suite} suite completes" "${seconds}" fail "${log}" "exited ${rc}" >/dev/null
  fi
  junit_write "${TEST_RESULTS_DIR}/harness-${suite}.xml"
}

run_suite() {
  local suite="$1"
  shift
  local log="${TEST_RESULTS_DIR}/${suite}.log" start=${SECONDS} rc=0
  printf '\n>>> suite %s: %s\n' "${suite}" "$*"
  "$@" 2>&1 | tee "${log}" || rc=$?
  local took=$((SECONDS - start))
  record_exit "${suite}" "${rc}" "${took}" "${log}"
  if ((rc == 0)); then
    printf '<<< suite %s passed in %ss\n' "${suite}" "${took}"
  else
    printf '<<< suite %s FAILED (exit %s) in %ss\n' "${suite}" "${rc}" "${took}"
  fi
}

suite_workspace() {
  "${PNPM}" exec turbo run build typecheck lint lint:root test --continue --output-logs=new-only
}

suite_node24() {
  local node24_dir
  node24_dir="$(dirname "$(readlink -f bin/node24)")"
  # Same packages, same tests, with Node 24 first on PATH (vitest's shebang picks it up).
  PATH="${node24_dir}:${PATH}" TEST_RESULTS_SUFFIX=-node24 bash -c '
    node --version
    "$0" -r --workspace-concurrency=1 --filter "./apps/*" --filter "./packages/*" run test' "${PNPM}"
}

suite_oracle() {
  (cd tooling/istio-oracle && GOFLAGS=-mod=mod GOTOOLCHAIN=local go test ./...)
}

suite_demo() {
  make --no-print-directory demo
}

suite_setup() {
  "${PNPM}" install --frozen-lockfile
  hack/ci-tools.sh
}

main() {
  local start=${SECONDS}
  # Installing is a suite too: when it fails, the summary still ends the output with the count.
  run_suite setup suite_setup
  if ! grep -q '<failure' "${TEST_RESULTS_DIR}/harness-setup.xml"; then
    local s
    for s in ${SUITES}; do
      case "${s}" in
        workspace) run_suite workspace suite_workspace ;;
        node24) run_suite node24 suite_node24 ;;
        chart) run_suite chart hack/test-chart.sh ;;
        istio) run_suite istio hack/test-istio.sh ;;
        oracle) run_suite oracle suite_oracle ;;
        scripts) run_suite scripts hack/test-scripts.sh ;;
        demo) run_suite demo suite_demo ;;
        prometheus) run_suite prometheus hack/test-prometheus.sh ;;
        fresh) run_suite fresh hack/test-fresh-clone.sh ;;
        *)
          printf 'error: unknown suite %s (known: workspace node24 chart istio oracle scripts demo prometheus fresh)\n' "${s}" >&2
          exit 2
          ;;
      esac
    done
  fi

  printf '\n>>> all suites done in %ss\n' "$((SECONDS - start))"
  node hack/test-summary.mjs "${TEST_RESULTS_DIR}"
}

main "$@"
