#!/usr/bin/env bats
# Each @test runs in a subshell of its own: variables it exports are meant to stay in it.
# shellcheck disable=SC2030,SC2031
# scripts/verify.sh (`make verify`) and scripts/status.sh (`make status`) against stub binaries.

setup() {
  load helpers
  setup_sandbox
}

@test "verify hands k6 the expected split of the applied stage" {
  given_cluster canary-25
  run_script verify.sh
  assert_status 0
  assert_called "rollout expect canary-25 --json"
  # the file k6 was given holds what `rollout expect canary-25 --json` printed
  grep -q '"stage":"canary-25"' "${STUB_STATE}/k6-expect.json"
  grep -qx "GATEWAY_URL=http://localhost:${GATEWAY_PORT}" "${STUB_STATE}/k6-env"
  grep -qx "SUMMARY_FILE=${SANDBOX}/dotstate/verify/k6-canary-25.json" "${STUB_STATE}/k6-env"
  assert_called "loadtest/split.ts"
  assert_output_contains "verify stage canary-25: passed"
  # the temp file is removed afterwards
  [[ -z "$(ls -A "${SANDBOX}/tmp")" ]]
}

@test "GATEWAY_URL reaches k6" {
  given_cluster blue
  export GATEWAY_URL=http://127.0.0.1:18080/
  run_script verify.sh
  assert_status 0
  grep -qx 'GATEWAY_URL=http://127.0.0.1:18080' "${STUB_STATE}/k6-env"
}

@test "a split mismatch (k6 threshold crossed) fails verify" {
  given_cluster canary-50
  export STUB_K6_EXIT=99
  run_script verify.sh
  assert_status 1
  assert_output_contains "verify stage canary-50: FAILED (k6 exit 99"
}

@test "verify without an applied stage says so and runs no k6" {
  given_cluster
  run_script verify.sh
  assert_failure
  assert_output_contains "no stage is applied"
  refute_called "k6 run"
}

@test "verify needs the built split-check package k6 imports" {
  given_cluster stable
  rm "${REPO}/packages/split-check/dist/index.js"
  run_script verify.sh
  assert_failure
  assert_output_contains "make build"
  refute_called "k6 run"
}

@test "verify with TARGET=local is the CLI's" {
  export TARGET=local
  run_script verify.sh
  assert_status 0
  assert_called "rollout verify --target local"
  refute_called "k6"
}

@test "status prints the applied stage, its strategy and its expected split" {
  given_cluster blue-preview
  run_script status.sh
  assert_status 0
  assert_output_contains "applied stage: blue-preview (strategy blue-green)"
  assert_output_contains "stage blue-preview: expected split"
  assert_called "rollout expect blue-preview"
}

@test "status without a cluster is a clear message and a non-zero exit" {
  run_script status.sh
  assert_failure
  assert_output_contains "no cluster: kube context 'kind-rollouts' not found"
}

@test "status with a cluster that does not answer says so" {
  given_cluster stable
  export STUB_API_DOWN=1
  run_script status.sh
  assert_failure
  assert_output_contains "does not answer"
}

@test "status with TARGET=local is the CLI's" {
  export TARGET=local
  run_script status.sh
  assert_status 0
  assert_called "rollout status --target local"
  refute_called "kubectl"
}

@test "VERIFY_STAGE measures against another stage's split (diagnosis), and k6 runs without usage report" {
  given_cluster canary-25
  export VERIFY_STAGE=canary-50
  run_script verify.sh
  assert_status 0
  assert_called "rollout expect canary-50 --json"
  grep -q '"stage":"canary-50"' "${STUB_STATE}/k6-expect.json"
  assert_called "k6 run --quiet --no-usage-report"
}

@test "verify hands k6 the analysis thresholds file, for its per-version error and p99 thresholds" {
  given_cluster canary-10
  cp "${REAL_ROOT}/analysis.yaml" "${REPO}/analysis.yaml"
  run_script verify.sh
  assert_status 0
  grep -qx "ANALYSIS_FILE=${REPO}/analysis.yaml" "${STUB_STATE}/k6-env"
  refute_output_contains "k6 checks the split only"
}

@test "ROLLOUT_ANALYSIS names another thresholds file, as for the CLI" {
  given_cluster canary-10
  cp "${REAL_ROOT}/analysis.yaml" "${SANDBOX}/strict.yaml"
  ROLLOUT_ANALYSIS="${SANDBOX}/strict.yaml" run_script verify.sh
  assert_status 0
  grep -qx "ANALYSIS_FILE=${SANDBOX}/strict.yaml" "${STUB_STATE}/k6-env"
}

@test "without analysis.yaml verify says so and k6 checks the split only" {
  given_cluster canary-10
  run_script verify.sh
  assert_status 0
  assert_output_contains "analysis.yaml not found: k6 checks the split only"
  refute_called "ANALYSIS_FILE="
  [[ "$(grep -c '^ANALYSIS_FILE=' "${STUB_STATE}/k6-env" || true)" == 0 ]]
}
