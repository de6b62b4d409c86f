#!/usr/bin/env bats
# Each @test runs in a subshell of its own: variables it exports are meant to stay in it.
# shellcheck disable=SC2030,SC2031
# scripts/doctor.sh (`make doctor`) against stub binaries.

setup() {
  load helpers
  setup_sandbox
  # A port nothing listens on, so the port check does not depend on this machine (8080 may be busy here).
  export HOST_PORT
  HOST_PORT="$(free_port)"
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

@test "doctor on a ready machine: every check ok, exit 0" {
  run_script doctor.sh
  assert_status 0
  assert_output_contains "ok     docker 28.1.1 reachable"
  assert_output_contains "ok     kind ${KIND_VERSION#v}"
  assert_output_contains "ok     istioctl ${ISTIO_VERSION}"
  assert_output_contains "ok     port ${HOST_PORT} free"
  assert_output_contains ", 0 blockers"
}

@test "doctor on macOS arm64: supported, and no Linux-only check" {
  use_stub uname
  export STUB_UNAME_S=Darwin STUB_UNAME_M=arm64
  run_script doctor.sh
  assert_status 0
  assert_output_contains "ok     OS darwin"
  assert_output_contains "ok     CPU architecture arm64"
  refute_output_contains "inotify"
  assert_output_contains "0 warnings, 0 blockers"
}

@test "doctor reports a missing tool with how to get it, and exits non-zero" {
  remove_stub kind
  run_script doctor.sh
  assert_status 1
  assert_output_contains "FAIL   kind not found: run 'make tools'"
  assert_output_contains "1 blockers"
}

@test "doctor reports a docker daemon that does not answer" {
  export STUB_DOCKER_DOWN=1
  run_script doctor.sh
  assert_status 1
  assert_output_contains "FAIL   docker daemon does not answer"
}

@test "doctor warns under 4 CPUs / 8 GiB and blocks under 2 CPUs / 4 GiB" {
  export STUB_DOCKER_CPUS=3 STUB_DOCKER_MEM=$((6 * 1073741824))
  run_script doctor.sh
  assert_status 0
  assert_output_contains "WARN   docker has 3 CPUs"
  assert_output_contains "WARN   docker has 6.0 GiB of memory"

  export STUB_DOCKER_CPUS=1 STUB_DOCKER_MEM=$((3 * 1073741824))
  run_script doctor.sh
  assert_status 1
  assert_output_contains "FAIL   docker has 1 CPU(s)"
  assert_output_contains "FAIL   docker has 3.0 GiB of memory"
}

@test "doctor warns about a tool at another version than the pin" {
  export STUB_KUBECTL_VERSION=1.30.2
  run_script doctor.sh
  assert_status 0
  assert_output_contains "WARN   kubectl 1.30.2"
  assert_output_contains "pinned ${KUBECTL_VERSION#v}"
}

@test "doctor blocks on an istioctl of another version (it would install that Istio)" {
  export STUB_ISTIOCTL_VERSION=1.20.3
  run_script doctor.sh
  assert_status 1
  assert_output_contains "FAIL   istioctl 1.20.3"
}

@test "doctor blocks when the gateway port is taken" {
  command -v python3 >/dev/null || skip "python3 is needed to hold a port"
  # A listener on an ephemeral port; it prints the port once it listens (read through a FIFO: no polling).
  mkfifo "${SANDBOX}/port"
  python3 -c '
import socket, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(1)
print(s.getsockname()[1], flush=True)
time.sleep(60)
' >"${SANDBOX}/port" 2>/dev/null 3>&- &
  local holder=$!
  read -r HOST_PORT <"${SANDBOX}/port"
  export HOST_PORT
  run_script doctor.sh
  kill "${holder}"
  assert_status 1
  assert_output_contains "FAIL   port ${HOST_PORT} is in use"
}

@test "doctor blocks on an unsupported CPU architecture" {
  use_stub uname
  export STUB_UNAME_M=riscv64
  run_script doctor.sh
  assert_status 1
  assert_output_contains "FAIL   CPU architecture riscv64"
}
