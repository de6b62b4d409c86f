#!/usr/bin/env bats
# Each @test runs in a subshell of its own: variables it exports are meant to stay in it.
# shellcheck disable=SC2030,SC2031
# scripts/stage.sh (`make <stage>`) and scripts/rollback.sh (`make rollback`) against stub binaries.

setup() {
  load helpers
  setup_sandbox
}

@test "an unknown stage exits 2 with the CLI's list of stages and makes no kubectl call" {
  given_cluster stable
  run_script stage.sh canary-33
  assert_status 2
  assert_output_contains "unknown stage 'canary-33'"
  assert_output_contains "canary-50"
  refute_called "kubectl"
  refute_called "k6"
}

@test "no stage argument is a usage error" {
  run_script stage.sh
  assert_status 2
  assert_output_contains "usage: scripts/stage.sh <stage>"
  refute_called "kubectl"
}

@test "a stage is linted, applied to the kind context, waited for at the gateway, then verified with k6" {
  given_cluster stable
  run_script stage.sh canary-50
  assert_status 0
  assert_order \
    "rollout path canary-50" \
    "rollout lint" \
    "kubectl --context kind-rollouts apply -f ${STUB_STATE}/stages/canary-50.yaml" \
    "curl -sS -o /dev/null -D - --max-time 5 http://localhost:8080/" \
    "rollout expect canary-50 --json" \
    "k6 run"
  [[ "$(cat "${STUB_STATE}/vs-stage")" == canary-50 ]]
  assert_output_contains "3 probes answered by stage canary-50"
  grep -qx 'STAGE=canary-50' "${STUB_STATE}/k6-env"
}

@test "a lint finding stops the stage before it is applied" {
  given_cluster stable
  export STUB_LINT_EXIT=1
  run_script stage.sh canary-25
  assert_failure
  refute_called "apply -f"
  [[ "$(cat "${STUB_STATE}/vs-stage")" == stable ]]
}

@test "k6 missing stops the stage before it is applied" {
  given_cluster stable
  remove_stub k6
  run_script stage.sh canary-25
  assert_failure
  assert_output_contains "k6 not found"
  assert_output_contains "make tools"
  refute_called "apply -f"
}

@test "no cluster: a clear message and nothing applied" {
  run_script stage.sh canary-10
  assert_failure
  assert_output_contains "no cluster"
  assert_output_contains "make up"
  refute_called "apply -f"
}

@test "a gateway that never serves the new stage times out with the state dumped, and k6 does not run" {
  given_cluster stable
  export STUB_GATEWAY_STAGE=stable STAGE_TIMEOUT=0
  run_script stage.sh canary-75
  assert_failure
  assert_output_contains "timed out after 0s"
  assert_output_contains "waiting for the gateway to serve stage canary-75"
  assert_output_contains "last x-rollouts-stage seen at http://localhost:8080/: 'stable'"
  assert_called "istioctl --context kind-rollouts proxy-status"
  refute_called "k6 run"
}

@test "a manifest without the stage header falls back to istioctl proxy-status" {
  given_cluster stable
  export STUB_NO_STAGE_HEADER=1
  run_script stage.sh green
  assert_status 0
  assert_output_contains "sets no x-rollouts-stage response header"
  assert_order "apply -f" "istioctl --context kind-rollouts proxy-status" "k6 run"
}

@test "a proxy that stays STALE times out in the fallback wait" {
  given_cluster stable
  export STUB_NO_STAGE_HEADER=1 STUB_PROXY_RDS=STALE STAGE_TIMEOUT=0
  run_script stage.sh green
  assert_failure
  assert_output_contains "waiting for every proxy to be in sync with istiod"
  refute_called "k6 run"
}

@test "SKIP_VERIFY=1 applies and waits but runs no k6" {
  given_cluster stable
  export SKIP_VERIFY=1
  remove_stub k6
  run_script stage.sh blue
  assert_status 0
  [[ "$(cat "${STUB_STATE}/vs-stage")" == blue ]]
  assert_output_contains "not verified: SKIP_VERIFY=1"
}

@test "TARGET=local hands the stage to the CLI and touches no cluster" {
  export TARGET=local
  run_script stage.sh canary-25
  assert_status 0
  assert_called "rollout apply canary-25 --target local"
  refute_called "kubectl"
  refute_called "k6"
}

@test "an unknown TARGET is a usage error" {
  export TARGET=staging
  run_script stage.sh stable
  assert_status 2
  assert_output_contains "TARGET must be 'cluster' or 'local'"
}

@test "rollback from blue-preview applies green" {
  given_cluster blue-preview
  run_script rollback.sh
  assert_status 0
  assert_output_contains "rollback: blue-preview -> green"
  assert_order "rollout rollback-target blue-preview" "rollout path green" \
    "kubectl --context kind-rollouts apply -f ${STUB_STATE}/stages/green.yaml" "k6 run"
  [[ "$(cat "${STUB_STATE}/vs-stage")" == green ]]
}

@test "rollback from canary-50 applies stable" {
  given_cluster canary-50
  run_script rollback.sh
  assert_status 0
  assert_called "kubectl --context kind-rollouts apply -f ${STUB_STATE}/stages/stable.yaml"
  refute_called "stages/green.yaml"
  [[ "$(cat "${STUB_STATE}/vs-stage")" == stable ]]
}

@test "rollback with no stage applied says so and applies nothing" {
  given_cluster
  run_script rollback.sh
  assert_failure
  assert_output_contains "nothing to roll back"
  refute_called "apply -f"
}

@test "rollback with TARGET=local is the CLI's" {
  export TARGET=local
  run_script rollback.sh
  assert_status 0
  assert_called "rollout rollback --target local"
  refute_called "kubectl"
}
