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
    "rollout field canary-50 file --api virtualservice" \
    "rollout field canary-50 stage-header --api virtualservice" \
    "rollout lint --stage canary-50 --api virtualservice" \
    "kubectl --context kind-rollouts apply -f ${STUB_STATE}/stages/virtualservice/canary-50.yaml" \
    "curl -sS -o /dev/null -D - --max-time 5 http://localhost:${GATEWAY_PORT}/" \
    "k6 run"
  [[ "$(cat "${STUB_STATE}/vs-stage")" == canary-50 ]]
  # the terminal shows each command as it runs
  assert_output_contains "+ rollout lint --stage canary-50 --api virtualservice"
  assert_output_contains "+ kubectl --context kind-rollouts apply -f ${STUB_STATE}/stages/virtualservice/canary-50.yaml"
  assert_output_contains "+ curl -sI http://localhost:${GATEWAY_PORT}/   until 3 answers in a row carry x-rollouts-stage: canary-50"
  assert_output_contains "the gateway serves canary-50"
  assert_output_contains "+ scripts/verify.sh"
  grep -qx 'STAGE=canary-50' "${STUB_STATE}/k6-env"
}

@test "API=gateway-api applies the stage's HTTPRoute and reads the applied stage from it" {
  given_cluster stable
  export API=gateway-api STUB_GATEWAY_API=1
  run_script stage.sh canary-25
  assert_status 0
  assert_order \
    "rollout field canary-25 file --api gateway-api" \
    "rollout lint --stage canary-25 --api gateway-api" \
    "kubectl --context kind-rollouts apply -f ${STUB_STATE}/stages/gateway-api/canary-25.yaml" \
    "kubectl --context kind-rollouts -n rollouts get httproute.gateway.networking.k8s.io/webapp" \
    "k6 run"
  [[ "$(cat "${STUB_STATE}/hr-stage")" == canary-25 ]]
  [[ "$(cat "${STUB_STATE}/vs-stage")" == stable ]] # the VirtualService was not touched
  assert_output_contains "(API=gateway-api)"
}

@test "API=gateway-api on a cluster set up without the Gateway API CRDs says how to set it up, applies nothing" {
  given_cluster stable
  export API=gateway-api
  run_script stage.sh canary-25
  assert_failure
  assert_output_contains "has no Gateway API CRDs: set it up with 'make up API=gateway-api'"
  refute_called "apply -f"
}

@test "an unknown API is a usage error before any cluster call" {
  export API=ingress
  run_script stage.sh canary-25
  assert_status 2
  assert_output_contains "API must be 'virtualservice' or 'gateway-api', got 'ingress'"
  refute_called "kubectl"
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
  assert_output_contains "last x-rollouts-stage seen at http://localhost:${GATEWAY_PORT}/: 'stable'"
  assert_called "istioctl --context kind-rollouts proxy-status"
  refute_called "k6 run"
}

@test "only the target stage is linted: a broken file of another stage does not block it" {
  given_cluster canary-50
  export STUB_BROKEN_STAGE=canary-75
  run_script stage.sh stable
  assert_status 0
  assert_called "rollout lint --stage stable"
  [[ "$(cat "${STUB_STATE}/vs-stage")" == stable ]]
}

@test "rollback is not blocked by a broken file of an unrelated stage" {
  given_cluster blue-preview
  export STUB_BROKEN_STAGE=canary-25
  run_script rollback.sh
  assert_status 0
  assert_called "rollout lint --stage green"
  [[ "$(cat "${STUB_STATE}/vs-stage")" == green ]]
}

@test "a lint finding in the target stage's own file stops it before it is applied" {
  given_cluster stable
  export STUB_BROKEN_STAGE=canary-25
  run_script stage.sh canary-25
  assert_failure
  assert_output_contains "istio/stages/canary-25.yaml"
  refute_called "apply -f"
}

@test "the stage header's name comes from the CLI (rollout field), not from the script" {
  given_cluster stable
  export STUB_STAGE_HEADER=x-served-stage STAGE_TIMEOUT=0
  run_script stage.sh canary-25
  assert_status 0
  assert_output_contains "the gateway serves canary-25"
  assert_output_contains "carry x-served-stage: canary-25"
}

@test "a stage whose routes set no stage header stops before it is applied, and nothing waits on istioctl" {
  given_cluster stable
  export STUB_NO_STAGE_HEADER=1
  run_script stage.sh green
  assert_failure
  assert_output_contains "no response header is set to 'green' on every route"
  refute_called "apply -f"
  refute_called "proxy-status"
}

@test "the stages' hosts \"*\" answer any GATEWAY_URL host: no Host header is sent" {
  given_cluster stable
  export GATEWAY_URL=http://gateway.example:8080
  run_script stage.sh canary-10
  assert_status 0
  refute_called "Host:"
  grep -qx 'GATEWAY_HOST=' "${STUB_STATE}/k6-env"
}

@test "a GATEWAY_URL host the VirtualService does not list: the probes and k6 send Host: localhost" {
  given_cluster stable
  export STUB_HOSTS="webapp.rollouts.svc.cluster.local localhost 127.0.0.1"
  export GATEWAY_URL=http://gateway.example:8080 STAGE_TIMEOUT=0
  run_script stage.sh canary-10
  assert_status 0
  assert_output_contains "sending Host: localhost"
  assert_called "curl -H Host: localhost -sS -o /dev/null -D - --max-time 5 http://gateway.example:8080/"
  grep -qx 'GATEWAY_HOST=localhost' "${STUB_STATE}/k6-env"
  grep -qx 'GATEWAY_URL=http://gateway.example:8080' "${STUB_STATE}/k6-env"
}

@test "a GATEWAY_URL host the VirtualService lists gets no Host header" {
  given_cluster stable
  export STUB_HOSTS="webapp.rollouts.svc.cluster.local localhost 127.0.0.1"
  export GATEWAY_URL=http://127.0.0.1:8080
  run_script stage.sh canary-10
  assert_status 0
  refute_called "Host:"
  grep -qx 'GATEWAY_HOST=' "${STUB_STATE}/k6-env"
}

@test "SKIP_VERIFY=1 applies and waits but runs no k6" {
  given_cluster stable
  export SKIP_VERIFY=1
  remove_stub k6
  run_script stage.sh blue
  assert_status 0
  [[ "$(cat "${STUB_STATE}/vs-stage")" == blue ]]
  assert_output_contains "not measured: SKIP_VERIFY=1"
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
  assert_order "rollout rollback-target blue-preview" "rollout field green file" \
    "kubectl --context kind-rollouts apply -f ${STUB_STATE}/stages/virtualservice/green.yaml" "k6 run"
  [[ "$(cat "${STUB_STATE}/vs-stage")" == green ]]
}

@test "rollback from canary-50 applies stable" {
  given_cluster canary-50
  run_script rollback.sh
  assert_status 0
  assert_called "kubectl --context kind-rollouts apply -f ${STUB_STATE}/stages/virtualservice/stable.yaml"
  refute_called "stages/virtualservice/green.yaml"
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

@test "API=gateway-api: rollback reads the applied stage from the HTTPRoute and applies its rollback target's HTTPRoute" {
  given_cluster stable
  export API=gateway-api STUB_GATEWAY_API=1
  run_script stage.sh blue-preview
  assert_status 0
  run_script rollback.sh
  assert_status 0
  assert_output_contains "rollback: blue-preview -> green"
  assert_called "kubectl --context kind-rollouts apply -f ${STUB_STATE}/stages/gateway-api/green.yaml"
  [[ "$(cat "${STUB_STATE}/hr-stage")" == green ]]
  [[ "$(cat "${STUB_STATE}/vs-stage")" == stable ]]
}
