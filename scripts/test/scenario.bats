#!/usr/bin/env bats
# Each @test runs in a subshell of its own: variables it exports are meant to stay in it.
# shellcheck disable=SC2030,SC2031
# scripts/scenario.sh: a demo release fault on the cluster through the chart values, against stub binaries. The
# values come from the built CLI's scenarios (packages/cli/src/scenarios.ts), the one definition.

setup() {
  load helpers
  setup_sandbox
  ln -s "${REAL_ROOT}/packages/cli" "${REPO}/packages/cli"
  mkdir -p "${REPO}/charts/webapp/templates"
}

@test "--print gives the chart values of a scenario: its knobs on v2, the other knobs off" {
  run_script scenario.sh --print slow-v2
  assert_status 0
  [[ "${output}" == $'versions.v2.env.FAULT_DELAY_MS=150\nversions.v2.env.FAULT_ERROR_RATE=0' ]]
  run_script scenario.sh --print
  assert_status 0
  [[ "${output}" == $'versions.v2.env.FAULT_DELAY_MS=0\nversions.v2.env.FAULT_ERROR_RATE=0' ]]
}

@test "a scenario upgrades the installed release with its values, as make up installs it" {
  given_cluster stable
  SCENARIO=bad-v2 run_script scenario.sh
  assert_status 0
  assert_called "helm --kube-context kind-rollouts upgrade webapp charts/webapp -n rollouts --server-side=true --force-conflicts --wait=watcher --timeout 300s --set-string versions.v2.env.FAULT_DELAY_MS=0 --set-string versions.v2.env.FAULT_ERROR_RATE=0.05"
  [[ "$(cat "${STUB_STATE}/helm-wait")" == watcher ]]
  assert_output_contains "<<< scenario bad-v2: release webapp upgraded"
}

@test "none resets every fault knob" {
  given_cluster stable
  run_script scenario.sh none
  assert_status 0
  assert_called "--set-string versions.v2.env.FAULT_DELAY_MS=0 --set-string versions.v2.env.FAULT_ERROR_RATE=0"
}

@test "without a release it says to run make up, and upgrades nothing" {
  echo kind-rollouts >"${STUB_STATE}/contexts"
  run_script scenario.sh bad-v2
  assert_status 1
  assert_output_contains "release webapp is not installed in kind-rollouts"
  refute_called "helm --kube-context kind-rollouts upgrade"
}

@test "an unknown scenario exits 2 with the list, before any cluster call" {
  given_cluster stable
  run_script scenario.sh worse-v2
  assert_status 2
  assert_output_contains 'unknown scenario "worse-v2"; scenarios: bad-v2, slow-v2'
  refute_called "helm --kube-context"
  refute_called "kubectl --context"
}

@test "more than one name is a usage error" {
  run_script scenario.sh bad-v2 slow-v2
  assert_status 2
  assert_output_contains "usage: scripts/scenario.sh [--print] [bad-v2|slow-v2|none]"
}
