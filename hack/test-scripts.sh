#!/usr/bin/env bash
# The cluster-path suite of `make test`, three parts:
#   lint        shellcheck on every script (scripts/, hack/, bats files, helpers, stubs) scripts-shellcheck.xml
#   bats        scripts/test/*.bats with stub binaries on PATH (no Docker/cluster/net)  scripts-bats.xml
#   k6 script   loadtest/split.ts under node:test with stand-ins for the k6 modules    scripts-k6.xml
# JUnit goes to ${TEST_RESULTS_DIR:-.test-results}/ (file names take ${TEST_RESULTS_SUFFIX}). The k6 part needs
# the workspace built (`make build`: it imports packages/split-check/dist and calls the rollout CLI); the k6
# script's types are checked by the loadtest package's `typecheck` task (turbo), not here.
set -o errexit -o nounset -o pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${REPO_ROOT}"
RESULTS="${TEST_RESULTS_DIR:-${REPO_ROOT}/.test-results}"
SUFFIX="${TEST_RESULTS_SUFFIX:-}"

die() {
  printf 'error: %s\n' "$*" >&2
  exit 1
}

# count TEXT FILE: occurrences of TEXT in FILE.
count() { { grep -o -- "$1" "$2" || true; } | wc -l | tr -d ' '; }

# shellcheck source=hack/junit.sh
source "${REPO_ROOT}/hack/junit.sh"

# Files shellcheck reads: every bash file of scripts/ and hack/ (sourced helpers and extension-less stubs included).
shell_files() {
  ls scripts/*.sh hack/*.sh tooling/*/*.sh
  ls scripts/test/*.bats scripts/test/*.bash
  ls scripts/test/stubs/*
}

run_shellcheck() {
  local log f
  log="$(mktemp)"
  junit_init shellcheck
  printf '>>> shellcheck %s\n' "$(shellcheck --version | awk '/^version:/ { print $2 }')"
  for f in $(shell_files); do
    if shellcheck "${f}" >"${log}" 2>&1; then
      junit_record file "${f}" 0 ok "${log}" ""
    else
      junit_record file "${f}" 0 fail "${log}" "shellcheck findings"
    fi
  done
  rm -f "${log}"
  junit_write "${RESULTS}/scripts-shellcheck${SUFFIX}.xml"
  printf '<<< shellcheck: %s files, %s with findings\n' "$((JUNIT_PASSED + JUNIT_FAILED))" "${JUNIT_FAILED}"
  SHELLCHECK_TOTAL=$((JUNIT_PASSED + JUNIT_FAILED))
  SHELLCHECK_FAILED=${JUNIT_FAILED}
}

run_bats() {
  local dir rc=0
  dir="$(mktemp -d)"
  printf '>>> bats %s\n' "$(bats --version)"
  # --jobs would need GNU parallel; the suite takes seconds serially.
  bats --report-formatter junit --output "${dir}" scripts/test || rc=$?
  [[ -f "${dir}/report.xml" ]] || die "bats wrote no JUnit report (exit ${rc})"
  mv "${dir}/report.xml" "${RESULTS}/scripts-bats${SUFFIX}.xml"
  rm -rf "${dir}"
  BATS_TESTS="$(count '<testcase ' "${RESULTS}/scripts-bats${SUFFIX}.xml")"
  BATS_FAILED="$(count '<failure' "${RESULTS}/scripts-bats${SUFFIX}.xml")"
  printf '<<< bats: %s tests, %s failed (exit %s)\n' "${BATS_TESTS}" "${BATS_FAILED}" "${rc}"
  BATS_RC=${rc}
}

run_k6_script() {
  local rc=0 xml="${RESULTS}/scripts-k6${SUFFIX}.xml"
  printf '>>> k6 script (node:test, %s)\n' "$(node --version)"
  [[ -f packages/split-check/dist/index.js && -f packages/cli/dist/main.js ]] ||
    die "the k6 script test needs the workspace built: run 'make build'"
  (cd loadtest && node --import ./test/register.mjs --test \
    --test-reporter=spec --test-reporter-destination=stdout \
    --test-reporter=junit --test-reporter-destination="${xml}" \
    test/split.test.mjs) || rc=$?
  K6_TESTS="$(count '<testcase ' "${xml}")"
  K6_FAILED="$(count '<failure' "${xml}")"
  printf '<<< k6 script: %s tests, %s failed (exit %s)\n' "${K6_TESTS}" "${K6_FAILED}" "${rc}"
  K6_RC=${rc}
}

main() {
  local missing=()
  command -v shellcheck >/dev/null || missing+=(shellcheck)
  command -v bats >/dev/null || missing+=(bats)
  ((${#missing[@]} == 0)) ||
    die "${missing[*]} not found: apt-get install -y shellcheck bats (Debian/Ubuntu), brew install shellcheck bats-core (macOS), or hack/ci-tools.sh debian"
  mkdir -p "${RESULTS}"
  command -v node >/dev/null || die "node not found: install Node.js 20 or newer"
  run_shellcheck
  run_bats
  run_k6_script
  local passed=$((SHELLCHECK_TOTAL - SHELLCHECK_FAILED + BATS_TESTS - BATS_FAILED + K6_TESTS - K6_FAILED))
  local failed=$((SHELLCHECK_FAILED + BATS_FAILED + K6_FAILED))
  printf 'scripts: %s passed, %s failed\n' "${passed}" "${failed}"
  ((failed == 0 && BATS_RC == 0 && K6_RC == 0))
}

main "$@"
