# shellcheck shell=bash
# Variables set here (FLAG_VALUE, REST) are read by the stubs.
# shellcheck disable=SC2034
# Sourced by every stub in stubs/: records the call, offers small helpers. The stubs keep their state (clusters,
# contexts, the applied stage, installed Istio) as files in STUB_STATE and never reach the network.
set -o errexit -o nounset -o pipefail
: "${STUB_LOG:?STUB_LOG must be set by the test}" "${STUB_STATE:?STUB_STATE must be set by the test}"

STUB_NAME="$(basename "$0")"
printf '%s %s\n' "${STUB_NAME}" "$*" >>"${STUB_LOG}"

# flag_value FLAG ARGS...: the value of FLAG X or FLAG=X (empty when absent).
flag_value() {
  local flag="$1"
  shift
  while (($#)); do
    case "$1" in
      "${flag}") printf '%s' "${2:-}"; return 0 ;;
      "${flag}="*) printf '%s' "${1#*=}"; return 0 ;;
    esac
    shift
  done
}

# has_arg WORD ARGS...: WORD is one of ARGS.
has_arg() {
  local want="$1"
  shift
  local a
  for a in "$@"; do
    [[ "${a}" != "${want}" ]] || return 0
  done
  return 1
}

# require_context CONTEXT: like kubectl, fail when the kubeconfig has no such context.
require_context() {
  local ctx="$1"
  [[ -n "${ctx}" ]] || return 0
  if ! grep -qxF "${ctx}" "${STUB_STATE}/contexts" 2>/dev/null; then
    printf 'error: context "%s" does not exist\n' "${ctx}" >&2
    exit 1
  fi
}

# take_flag FLAG ARGS...: sets FLAG_VALUE to FLAG's value and REST to ARGS without FLAG and its value (both read
# by the stubs).
FLAG_VALUE=""
REST=()
take_flag() {
  local flag="$1"
  shift
  FLAG_VALUE=""
  REST=()
  while (($#)); do
    case "$1" in
      "${flag}") FLAG_VALUE="${2:-}"; shift 2 || shift ;;
      "${flag}="*) FLAG_VALUE="${1#*=}"; shift ;;
      *) REST+=("$1"); shift ;;
    esac
  done
}

state_has() { [[ -f "${STUB_STATE}/$1" ]]; }
state_get() { cat "${STUB_STATE}/$1" 2>/dev/null || true; }
state_set() { printf '%s\n' "$2" >"${STUB_STATE}/$1"; }
