#!/usr/bin/env bats
# Each @test runs in a subshell of its own: variables it exports are meant to stay in it.
# shellcheck disable=SC2030,SC2031
# scripts/dashboards.sh (`make dashboards`) against stub binaries.

setup() {
  load helpers
  setup_sandbox
}

# Stub port-forwards a test left running (each records "PID SERVICE" when STUB_PF_HOLD=1) are stopped here, so a
# failing test leaks nothing into the next.
teardown() {
  local pid service
  while read -r pid service; do
    kill "${pid}" 2>/dev/null || true
  done <"${STUB_STATE}/port-forwards" 2>/dev/null || true
  [[ -z "${SCRIPT_PID:-}" ]] || kill "${SCRIPT_PID}" 2>/dev/null || true
}

# refute_forwards_left: every port-forward the stub recorded has ended.
refute_forwards_left() {
  local pid service left=""
  [[ -s "${STUB_STATE}/port-forwards" ]] || { echo "no port-forward was recorded" >&2; return 1; }
  while read -r pid service; do
    if kill -0 "${pid}" 2>/dev/null; then left+=" ${service} (pid ${pid})"; fi
  done <"${STUB_STATE}/port-forwards"
  [[ -z "${left}" ]] || { echo "port-forwards still running after the script ended:${left}" >&2; return 1; }
}

@test "dashboards applies the addons of the pinned Istio and port-forwards Kiali and Prometheus" {
  given_cluster stable
  # The stub port-forwards return at once, so the script ends by reporting that a forward stopped.
  run_script dashboards.sh
  assert_failure
  assert_called "kubectl --context kind-rollouts apply -f https://raw.githubusercontent.com/istio/istio/${ISTIO_VERSION}/samples/addons/prometheus.yaml"
  assert_called "kubectl --context kind-rollouts apply -f https://raw.githubusercontent.com/istio/istio/${ISTIO_VERSION}/samples/addons/kiali.yaml"
  assert_order "rollout status deployment/prometheus" "rollout status deployment/kiali"
  assert_called "port-forward svc/kiali 20001:20001"
  assert_called "port-forward svc/prometheus 9090:9090"
  assert_output_contains "Kiali:      http://localhost:20001"
  assert_output_contains "a port-forward stopped"
}

@test "Ctrl-C ends dashboards with exit 0 and leaves no port-forward running" {
  given_cluster stable
  export STUB_PF_HOLD=1
  start_script dashboards.sh
  wait_for_lines "${STUB_STATE}/port-forwards" 2
  # Ctrl-C signals the whole foreground process group (the forwards of a script ignore SIGINT).
  kill -INT -- "-${SCRIPT_PID}"
  wait_script
  assert_status 0
  assert_output_contains "stopping the port-forwards"
  refute_forwards_left
}

@test "SIGTERM ends dashboards with exit 143 and leaves no port-forward running" {
  given_cluster stable
  export STUB_PF_HOLD=1
  start_script dashboards.sh
  wait_for_lines "${STUB_STATE}/port-forwards" 2
  kill -TERM "${SCRIPT_PID}"
  wait_script
  assert_status 143
  refute_forwards_left
}

@test "one port-forward failing ends dashboards and stops the other one" {
  given_cluster stable
  export STUB_PF_HOLD=1 STUB_PF_FAIL=prometheus
  run_script dashboards.sh
  assert_failure
  assert_output_contains "a port-forward stopped (is port 20001 or 9090 taken?)"
  [[ "$(cut -d' ' -f2 "${STUB_STATE}/port-forwards")" == kiali ]]
  refute_forwards_left
}

@test "dashboards without a cluster says so" {
  run_script dashboards.sh
  assert_failure
  assert_output_contains "no cluster"
  refute_called "apply"
}
