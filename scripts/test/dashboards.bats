#!/usr/bin/env bats
# Each @test runs in a subshell of its own: variables it exports are meant to stay in it.
# shellcheck disable=SC2030,SC2031
# scripts/dashboards.sh (`make dashboards`) against stub binaries.

setup() {
  load helpers
  setup_sandbox
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

@test "dashboards without a cluster says so" {
  run_script dashboards.sh
  assert_failure
  assert_output_contains "no cluster"
  refute_called "apply"
}
