# shellcheck shell=bash
# bats' `run` sets output and status.
# shellcheck disable=SC2154
# Shared set-up of the bats suites: every test runs the scripts with PATH limited to the stubs in stubs/
# (docker, kind, kubectl, helm, istioctl, k6, curl, node, and the rollout CLI via ROLLOUT) and a few system
# utilities, so a real kubectl or docker on the machine is never reached, and neither is the network.
# The scripts run from a copy of scripts/ and versions.env in a sandbox repository (REPO) with empty stand-ins
# for the files they check for, a copy of the chart's values.yaml and a link to the built packages/stages (the
# chart's versions are read through it): a test never writes into the checkout.

REAL_ROOT="$(cd "${BATS_TEST_DIRNAME}/../.." && pwd)"
STUB_SRC="${BATS_TEST_DIRNAME}/stubs"
STUBS=(docker kind kubectl helm istioctl k6 curl node rollout)
# What the scripts use besides the stubbed tools. `uname` is the real one unless a test links the stub.
SYSTEM_TOOLS=(bash env cat mkdir rm mktemp grep sed awk tr head tail cut sort uname sleep dirname basename
  chmod mv cp tar gzip sha256sum wc tee ls ln touch date)

# make_repo: the sandbox repository the scripts run in.
make_repo() {
  REPO="${SANDBOX}/repo"
  mkdir -p "${REPO}/scripts" "${REPO}/apps/webapp" "${REPO}/charts/webapp" "${REPO}/istio/base" \
    "${REPO}/loadtest" "${REPO}/packages/split-check/dist"
  cp "${REAL_ROOT}/versions.env" "${REAL_ROOT}/defaults.env" "${REPO}/"
  cp "${REAL_ROOT}"/scripts/*.sh "${REAL_ROOT}"/scripts/*.yaml "${REPO}/scripts/"
  local f
  for f in apps/webapp/Dockerfile charts/webapp/Chart.yaml istio/base/gateway.yaml loadtest/split.ts \
    packages/split-check/dist/index.js; do
    : >"${REPO}/${f}"
  done
  cp "${REAL_ROOT}/charts/webapp/values.yaml" "${REPO}/charts/webapp/"
  ln -s "${REAL_ROOT}/packages/stages" "${REPO}/packages/stages"
}

# free_port: a loopback port with no listener.
free_port() {
  local p
  for p in 18080 28080 38080 48080 58080; do
    if ! (exec 3<>"/dev/tcp/127.0.0.1/${p}") 2>/dev/null; then
      echo "${p}"
      return 0
    fi
  done
  return 1
}

# hold_port: listens on an ephemeral loopback port and exports it as GATEWAY_PORT; HOLDER is the listener's pid (the
# test kills it). The port is read through a FIFO once the listener is up: no polling.
hold_port() {
  command -v python3 >/dev/null || skip "python3 is needed to hold a port"
  mkfifo "${SANDBOX}/port"
  python3 -c '
import socket, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(1)
print(s.getsockname()[1], flush=True)
time.sleep(60)
' >"${SANDBOX}/port" 2>/dev/null 3>&- &
  # shellcheck disable=SC2034
  HOLDER=$!
  read -r GATEWAY_PORT <"${SANDBOX}/port"
  export GATEWAY_PORT
}

setup_sandbox() {
  # shellcheck source=versions.env
  source "${REAL_ROOT}/versions.env"
  SANDBOX="${BATS_TEST_TMPDIR}"
  make_repo
  export STUB_LOG="${SANDBOX}/calls.log"
  export STUB_STATE="${SANDBOX}/state"
  export STUB_LIB="${BATS_TEST_DIRNAME}/stub-lib.bash"
  mkdir -p "${STUB_STATE}" "${SANDBOX}/stubs" "${SANDBOX}/sys" "${SANDBOX}/localbin" "${SANDBOX}/tmp"
  : >"${STUB_LOG}"
  local t p
  for t in "${STUBS[@]}"; do
    ln -s "${STUB_SRC}/${t}" "${SANDBOX}/stubs/${t}"
  done
  for t in "${SYSTEM_TOOLS[@]}"; do
    p="$(command -v "${t}")" || continue
    ln -s "${p}" "${SANDBOX}/sys/${t}"
  done
  TEST_PATH="${SANDBOX}/stubs:${SANDBOX}/sys"

  # The stubs report the pinned versions unless a test says otherwise.
  export STUB_KIND_VERSION="${KIND_VERSION#v}" STUB_KUBECTL_VERSION="${KUBECTL_VERSION#v}"
  export STUB_HELM_VERSION="${HELM_VERSION#v}" STUB_ISTIOCTL_VERSION="${ISTIO_VERSION}" STUB_K6_VERSION="${K6_VERSION#v}"

  export LOCALBIN="${SANDBOX}/localbin" STATE_DIR="${SANDBOX}/dotstate" TMPDIR="${SANDBOX}/tmp"
  export ROLLOUT="${SANDBOX}/stubs/rollout" WAIT_INTERVAL=0 GIT_SHA=abc1234
  STUB_REAL_NODE="$(command -v node)"
  export STUB_REAL_NODE
  unset CLUSTER_NAME KUBE_CONTEXT GATEWAY_URL TARGET API VERIFY_STAGE SKIP_VERIFY K6_ARGS STAGE_TIMEOUT UP_TIMEOUT
  # A port nothing listens on, so a port check does not depend on this machine (8080 may be busy here).
  export GATEWAY_PORT
  GATEWAY_PORT="$(free_port)"
}

# remove_stub TOOL: the tool is missing from this machine.
remove_stub() { rm -f "${SANDBOX}/stubs/$1"; }

# use_stub TOOL: replace a system utility by its stub (uname).
use_stub() {
  rm -f "${SANDBOX}/sys/$1"
  ln -sf "${STUB_SRC}/$1" "${SANDBOX}/stubs/$1"
}

# run_script NAME ARGS...: scripts/NAME with the sandbox PATH, through bats' `run`.
run_script() {
  local name="$1"
  shift
  run env "PATH=${TEST_PATH}" "${REPO}/scripts/${name}" "$@"
}

# given_cluster [STAGE]: a machine where `make up` already ran (cluster, context, Istio, release), with STAGE
# applied (none when empty).
given_cluster() {
  echo "${CLUSTER_NAME:-rollouts}" >"${STUB_STATE}/kind-clusters"
  echo "kind-${CLUSTER_NAME:-rollouts}" >"${STUB_STATE}/contexts"
  echo "${ISTIO_VERSION}" >"${STUB_STATE}/istio-version"
  echo rollouts >"${STUB_STATE}/namespace"
  echo charts/webapp >"${STUB_STATE}/helm-release"
  if [[ -n "${1:-}" ]]; then
    echo "$1" >"${STUB_STATE}/vs-stage"
    case "$1" in green | blue-preview | blue) echo blue-green ;; *) echo canary ;; esac >"${STUB_STATE}/vs-strategy"
  fi
}

# Assertions on the recorded calls (one line per call: "tool arg arg ...").
calls_matching() { grep -cF -- "$1" "${STUB_LOG}" || true; }

assert_called() {
  grep -qF -- "$1" "${STUB_LOG}" || {
    printf 'expected a call containing: %s\ncalls:\n%s\n' "$1" "$(cat "${STUB_LOG}")" >&2
    return 1
  }
}

refute_called() {
  if grep -qF -- "$1" "${STUB_LOG}"; then
    printf 'expected no call containing: %s\ncalls:\n%s\n' "$1" "$(cat "${STUB_LOG}")" >&2
    return 1
  fi
}

# line_after N TEXT: number of the first call after call N that contains TEXT (0 when none).
line_after() {
  local n
  n="$(tail -n "+$(($1 + 1))" "${STUB_LOG}" | grep -nF -m 1 -- "$2" | cut -d: -f1)"
  if [[ -n "${n}" ]]; then echo $(($1 + n)); else echo 0; fi
}

# assert_order TEXT...: a call containing each TEXT, each one after the call found for the previous TEXT.
assert_order() {
  local prev=0 prev_text="(start)" n t
  for t in "$@"; do
    n="$(line_after "${prev}" "${t}")"
    if ((n == 0)); then
      printf 'no call containing "%s" after "%s" (call %s)\ncalls:\n%s\n' \
        "${t}" "${prev_text}" "${prev}" "$(cat -n "${STUB_LOG}")" >&2
      return 1
    fi
    prev="${n}" prev_text="${t}"
  done
}

# assert_output_contains TEXT: bats' $output (stdout + stderr of the last `run`) contains TEXT.
assert_output_contains() {
  [[ "${output}" == *"$1"* ]] || {
    printf 'expected the output to contain: %s\noutput:\n%s\n' "$1" "${output}" >&2
    return 1
  }
}

refute_output_contains() {
  [[ "${output}" != *"$1"* ]] || {
    printf 'expected the output not to contain: %s\noutput:\n%s\n' "$1" "${output}" >&2
    return 1
  }
}

assert_status() {
  [[ "${status}" -eq "$1" ]] || {
    printf 'expected exit status %s, got %s\noutput:\n%s\n' "$1" "${status}" "${output}" >&2
    return 1
  }
}

assert_failure() {
  [[ "${status}" -ne 0 ]] || {
    printf 'expected a non-zero exit status\noutput:\n%s\n' "${output}" >&2
    return 1
  }
}

# start_script NAME ARGS...: scripts/NAME in the background with the sandbox PATH, its output in
# ${SANDBOX}/script.out; SCRIPT_PID is its pid. Job control is on while it starts, so it is the leader of its own
# process group and gets SIGINT as from a terminal (a background command of a shell without job control ignores
# SIGINT, and a script cannot trap a signal ignored when it started). `wait_script` collects it.
# SIGINT is also reset to its default first: a test run started in the background (CI runners, `cmd &`) inherits
# SIGINT ignored, and bash keeps a signal ignored at its start ignored, traps or not.
start_script() {
  local name="$1"
  shift
  set -m
  python3 -c 'import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); os.execvp(sys.argv[1], sys.argv[1:])' \
    env "PATH=${TEST_PATH}" "${REPO}/scripts/${name}" "$@" >"${SANDBOX}/script.out" 2>&1 &
  SCRIPT_PID=$!
  set +m
}

# wait_script: waits for the script start_script started; sets status and output like bats' `run`.
wait_script() {
  status=0
  wait "${SCRIPT_PID}" || status=$?
  output="$(cat "${SANDBOX}/script.out")"
}

# wait_for_lines FILE N [SECONDS]: FILE has at least N lines within SECONDS (10), else fails.
wait_for_lines() {
  local file="$1" n="$2" deadline=$((SECONDS + ${3:-10}))
  while (($({ wc -l <"${file}"; } 2>/dev/null || echo 0) < n)); do
    ((SECONDS < deadline)) || {
      printf 'timed out waiting for %s lines in %s:\n%s\n' "${n}" "${file}" "$(cat "${file}" 2>/dev/null)" >&2
      return 1
    }
    sleep 0.1
  done
}
