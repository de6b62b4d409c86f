#!/usr/bin/env bats
# Each @test runs in a subshell of its own: variables it exports are meant to stay in it.
# shellcheck disable=SC2030,SC2031
# scripts/cluster-down.sh (`make down`) against stub binaries.

setup() {
  load helpers
  setup_sandbox
}

@test "down deletes the cluster" {
  given_cluster stable
  run_script cluster-down.sh
  assert_status 0
  assert_called "kind delete cluster --name rollouts"
  [[ ! -s "${STUB_STATE}/kind-clusters" ]]
  assert_output_contains "<<< delete kind cluster rollouts: deleted"
}

@test "down without a cluster is a no-op with a message" {
  run_script cluster-down.sh
  assert_status 0
  refute_called "kind delete"
  assert_output_contains "absent, nothing to delete"
}

@test "down deletes only the cluster CLUSTER_NAME names" {
  given_cluster stable
  echo other >>"${STUB_STATE}/kind-clusters"
  export CLUSTER_NAME=other
  run_script cluster-down.sh
  assert_status 0
  assert_called "kind delete cluster --name other"
  [[ "$(cat "${STUB_STATE}/kind-clusters")" == rollouts ]]
}

@test "down without kind names the tool and how to get it" {
  remove_stub kind
  run_script cluster-down.sh
  assert_failure
  assert_output_contains "kind not found: run 'make tools'"
}
