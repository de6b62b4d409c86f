# shellcheck shell=bash
# What the suites in hack/ share (sourced, never run): the pins and the fixed names the cluster path installs with
# (scripts/lib.sh, as for the scripts users run: release webapp, namespace rollouts, the chart), JUnit
# (hack/junit.sh), where results go, a scratch folder that `cleanup` removes, and their log/die (bad setup: exit 2).

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"
# shellcheck source=hack/junit.sh
source "${REPO_ROOT}/hack/junit.sh"

# Used by the suites that source this file.
# shellcheck disable=SC2034
TEST_RESULTS_DIR="${TEST_RESULTS_DIR:-${REPO_ROOT}/.test-results}"
WORK=""

log() { printf '>>> %s\n' "$*"; }
die() {
  printf 'error: %s\n' "$*" >&2
  exit 2
}
cleanup() { [[ -z "${WORK}" ]] || rm -rf "${WORK}"; }
