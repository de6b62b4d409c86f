#!/usr/bin/env bats
# Each @test runs in a subshell of its own: variables it exports are meant to stay in it.
# shellcheck disable=SC2030,SC2031
# The scripts with the real rollout CLI (packages/cli, built by `make build`) and the repository's real stage
# manifests; the cluster tools are still stubs.

setup() {
  load helpers
  setup_sandbox
  local cli="${REAL_ROOT}/packages/cli/dist/main.js"
  [[ -f "${cli}" ]] || {
    echo "${cli} is missing: run 'make build' first" >&2
    return 1
  }
  ROLLOUT="$(command -v node) ${cli}"
  export ROLLOUT ROLLOUT_ROOT="${REAL_ROOT}"
}

@test "real CLI: an unknown stage exits 2 with the valid stages and makes no kubectl call" {
  given_cluster stable
  run_script stage.sh canary-33
  assert_status 2
  assert_output_contains 'unknown stage "canary-33"'
  assert_output_contains "stable, canary-10, canary-25, canary-50, canary-75, canary-100, green, blue-preview, blue"
  refute_called "kubectl"
}

@test "real CLI: canary-25 applies istio/stages/canary-25.yaml and hands k6 its expected split" {
  given_cluster stable
  run_script stage.sh canary-25
  assert_status 0
  assert_called "kubectl --context kind-rollouts apply -f ${REAL_ROOT}/istio/stages/canary-25.yaml"
  [[ "$(cat "${STUB_STATE}/vs-stage")" == canary-25 ]]
  grep -q '"stage": "canary-25"' "${STUB_STATE}/k6-expect.json"
  grep -q '"x-canary": "always"' "${STUB_STATE}/k6-expect.json"
}

@test "real CLI: rollback from blue-preview applies istio/stages/green.yaml" {
  given_cluster blue-preview
  run_script rollback.sh
  assert_status 0
  assert_output_contains "rollback: blue-preview -> green"
  assert_called "kubectl --context kind-rollouts apply -f ${REAL_ROOT}/istio/stages/green.yaml"
  [[ "$(cat "${STUB_STATE}/vs-stage")" == green ]]
}

@test "real CLI: status prints the applied stage and the CLI's expected split" {
  given_cluster canary-75
  run_script status.sh
  assert_status 0
  assert_output_contains "applied stage: canary-75 (strategy canary)"
  assert_output_contains "stage canary-75 (canary, istio/stages/canary-75.yaml)"
}
