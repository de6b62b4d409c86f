#!/usr/bin/env bash
# The fresh-machine suite of `make test`: what a new user does first, on a clean clone of HEAD, with any global
# pnpm and turbo hidden, so a step that silently relies on one of them fails here as it would on their machine.
#   fresh-clone   `make demo` with pnpm, pnpx and turbo answering "command not found"
#   other-pnpm    `make lint` with a pnpm of another version first on PATH: it must never be the one that runs
# Only committed work is cloned. JUnit: ${TEST_RESULTS_DIR:-.test-results}/fresh.xml
set -o errexit -o nounset -o pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
RESULTS="${TEST_RESULTS_DIR:-${REPO_ROOT}/.test-results}"
# shellcheck source=hack/junit.sh
source "${REPO_ROOT}/hack/junit.sh"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/rollouts-fresh.XXXXXX")"
cleanup() {
  # A demo that failed half-way may have left the local path running in the clone.
  if [[ -f "${WORK}/clone/packages/cli/dist/main.js" ]]; then
    (cd "${WORK}/clone" && node packages/cli/dist/main.js local down >/dev/null 2>&1) || true
  fi
  rm -rf "${WORK}"
}
trap cleanup EXIT

# shim DIR NAME SCRIPT: an executable NAME in DIR running SCRIPT (sh).
shim() {
  mkdir -p "$1"
  printf '#!/bin/sh\n%s\n' "$3" >"$1/$2"
  chmod +x "$1/$2"
}

hidden="${WORK}/hidden"
for tool in pnpm pnpx turbo; do
  shim "${hidden}" "${tool}" "echo \"${tool}: command not found (hidden by test-fresh-clone.sh)\" >&2; exit 127"
done
# A pnpm of another version: answers --version, refuses to do anything else.
other="${WORK}/other-pnpm"
# shellcheck disable=SC2016 # the shim's own $1 and $*
shim "${other}" pnpm 'if [ "$1" = --version ] || [ "$1" = -v ]; then echo 9.0.0; exit 0; fi
echo "pnpm 9.0.0 (another version, first on PATH) was run with: $*" >&2; exit 3'

junit_init fresh
git clone -q --no-hardlinks "${REPO_ROOT}" "${WORK}/clone"
printf '>>> cloned %s into a temporary folder; pnpm, pnpx and turbo hidden\n' "$(git -C "${REPO_ROOT}" rev-parse --short HEAD)"

# check NAME PATH_PREFIX COMMAND...: runs COMMAND in the clone with PATH_PREFIX first on PATH.
check() {
  local name="$1" prefix="$2"
  shift 2
  local out="${WORK}/${name}.log" start=${SECONDS}
  if (cd "${WORK}/clone" && PATH="${prefix}:${hidden}:${PATH}" "$@") </dev/null >"${out}" 2>&1; then
    junit_record fresh "${name}: $*" "$((SECONDS - start))" ok "${out}" "$(tail -n 1 "${out}" | cut -c1-100)"
  else
    junit_record fresh "${name}: $*" "$((SECONDS - start))" fail "${out}" "exit $?"
  fi
}

check fresh-clone "${hidden}" make --no-print-directory demo
check other-pnpm "${other}" make --no-print-directory lint

junit_write "${RESULTS}/fresh.xml"
((JUNIT_FAILED == 0))
