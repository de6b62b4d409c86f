#!/usr/bin/env bats
# Each @test runs in a subshell of its own: variables it exports are meant to stay in it.
# shellcheck disable=SC2030,SC2031
# scripts/doctor.sh (`make doctor`) against stub binaries.

setup() {
  load helpers
  setup_sandbox
}

@test "doctor on a ready machine: every check ok, exit 0" {
  run_script doctor.sh
  assert_status 0
  assert_output_contains "ok     docker 28.1.1 reachable"
  assert_output_contains "ok     kind ${KIND_VERSION#v}"
  assert_output_contains "ok     istioctl ${ISTIO_VERSION}"
  assert_output_contains "ok     port ${GATEWAY_PORT} free"
  assert_output_contains "ok     docker cgroup v2"
  assert_output_contains "ok     docker buildx v0.29.1: images are built with BuildKit"
  assert_output_contains "ok     helm ${HELM_VERSION#v}"
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

@test "doctor blocks on a GATEWAY_PORT that is not a port" {
  GATEWAY_PORT=http run_script doctor.sh
  assert_status 1
  assert_output_contains "FAIL   GATEWAY_PORT='http' is not a port: expected an integer from 1 to 65535"
}

@test "doctor blocks when the gateway port is taken" {
  hold_port
  run_script doctor.sh
  kill "${HOLDER}"
  assert_status 1
  assert_output_contains "FAIL   port ${GATEWAY_PORT} is in use"
}

@test "doctor blocks on an unsupported CPU architecture" {
  use_stub uname
  export STUB_UNAME_M=riscv64
  run_script doctor.sh
  assert_status 1
  assert_output_contains "FAIL   CPU architecture riscv64"
}

@test "doctor without buildx: a warning (the legacy builder builds the images too), not a blocker" {
  export STUB_NO_BUILDX=1
  run_script doctor.sh
  assert_status 0
  assert_output_contains "WARN   docker buildx not found: images are built with Docker's legacy builder"
  assert_output_contains " warnings, 0 blockers"
}

@test "doctor blocks on a docker running cgroup v1, and says what to do" {
  export STUB_DOCKER_CGROUP=1
  run_script doctor.sh
  assert_status 1
  assert_output_contains "FAIL   docker runs on cgroup v1: the kind node image for Kubernetes ${KUBE_VERSION} needs cgroup v2"
  assert_output_contains "systemd.unified_cgroup_hierarchy=1"
  assert_output_contains "cgroup_no_v1=all"
  assert_output_contains "1 blockers"
}

@test "doctor warns when docker does not report its cgroup version" {
  export STUB_DOCKER_CGROUP=none
  run_script doctor.sh
  assert_status 0
  assert_output_contains "WARN   docker reports cgroup version '': cannot check it"
}

@test "doctor blocks on a Helm 3 (the scripts use Helm 4's flags) and only warns about another Helm 4" {
  export STUB_HELM_VERSION=3.19.0
  run_script doctor.sh
  assert_status 1
  assert_output_contains "FAIL   helm 3.19.0"
  assert_output_contains "is not Helm 4"

  export STUB_HELM_VERSION=4.2.0
  run_script doctor.sh
  assert_status 0
  assert_output_contains "WARN   helm 4.2.0"
  assert_output_contains "pinned ${HELM_VERSION#v}"
}
