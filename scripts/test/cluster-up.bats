#!/usr/bin/env bats
# Each @test runs in a subshell of its own: variables it exports are meant to stay in it.
# shellcheck disable=SC2030,SC2031
# scripts/cluster-up.sh (`make up`) against stub binaries.

setup() {
  load helpers
  setup_sandbox
  # The scenarios' chart values are read from the built CLI (scripts/scenario.sh --print).
  ln -s "${REAL_ROOT}/packages/cli" "${REPO}/packages/cli"
}

# build_call VERSION TAG: how up builds one version with buildx (the stub docker has it unless STUB_NO_BUILDX=1).
build_call() {
  echo "docker buildx build -f apps/webapp/Dockerfile --build-arg NODE_VERSION=${NODE24_VERSION} --build-arg APP_VERSION=$1 --build-arg GIT_SHA=abc1234 -t webapp:$2 --load --provenance=false --metadata-file "
}

@test "up on an empty machine creates everything in order, with the pinned node image and Istio" {
  run_script cluster-up.sh
  assert_status 0

  assert_order \
    "docker info" \
    "kind get clusters" \
    "kind create cluster --name rollouts --image ${KIND_NODE_IMAGE} --config - --wait 120s" \
    "istioctl --context kind-rollouts install -y -f scripts/istio-operator.yaml" \
    "kubectl --context kind-rollouts -n istio-system rollout status deployment/istiod" \
    "kubectl --context kind-rollouts apply -f scripts/namespace.yaml" \
    "$(build_call v1 v1)" \
    "kind load docker-image --name rollouts webapp:v1" \
    "$(build_call v2 v2)" \
    "kind load docker-image --name rollouts webapp:v2" \
    "helm --kube-context kind-rollouts upgrade --install webapp charts/webapp -n rollouts --server-side=true --force-conflicts --wait=watcher --timeout 5m" \
    "kubectl --context kind-rollouts apply -f istio/base" \
    "rollout field stable file --api virtualservice" \
    "rollout lint --stage stable --api virtualservice" \
    "kubectl --context kind-rollouts apply -f ${STUB_STATE}/stages/virtualservice/stable.yaml" \
    "curl -sS -o /dev/null -D - --max-time 5 http://localhost:${GATEWAY_PORT}/"
  # kind got scripts/kind-config.yaml with the gateway port filled in, and the command was shown
  grep -qx "        hostPort: ${GATEWAY_PORT}" "${STUB_STATE}/kind-config"
  grep -qx "      - containerPort: 30080" "${STUB_STATE}/kind-config"
  assert_output_contains "+ kind create cluster --name rollouts --image ${KIND_NODE_IMAGE} --config - --wait 120s"
  # the Istio that got installed is the pinned one (istioctl installs its own version, checked first)
  [[ "$(cat "${STUB_STATE}/istio-version")" == "${ISTIO_VERSION}" ]]
  assert_called "curl -sS -o /dev/null -D - --max-time 5 -H x-canary: always http://localhost:${GATEWAY_PORT}/"
  # `make up` applies stable without k6 (SKIP_VERIFY), then smoke-tests it with one request per version
  refute_called "k6 run"
  assert_output_contains "default -> v1, x-canary: always -> v2"
  assert_output_contains ">>> kind cluster rollouts"
  assert_output_contains "<<< kind cluster rollouts: created"
}

@test "up twice creates no second cluster, reinstalls nothing and keeps the applied stage" {
  run_script cluster-up.sh
  assert_status 0
  echo canary-50 >"${STUB_STATE}/vs-stage"
  : >"${STUB_LOG}"

  run_script cluster-up.sh
  assert_status 0
  [[ "$(calls_matching "kind create cluster")" -eq 0 ]]
  [[ "$(calls_matching "istioctl --context kind-rollouts install")" -eq 0 ]]
  refute_called "rollout lint"
  refute_called "${STUB_STATE}/stages/"
  [[ "$(cat "${STUB_STATE}/vs-stage")" == canary-50 ]]
  assert_output_contains "<<< kind cluster rollouts: exists, skipped"
  assert_output_contains "${ISTIO_VERSION} installed, skipped"
  assert_output_contains "<<< namespace rollouts (scripts/namespace.yaml): exists, skipped"
  assert_output_contains "webapp:v1 unchanged"
  assert_output_contains "stage canary-50 applied, kept"
  [[ "$(cat "${STUB_STATE}/kind-clusters")" == rollouts ]]
}

@test "a missing tool stops up before anything is created" {
  remove_stub helm
  run_script cluster-up.sh
  assert_failure
  assert_output_contains "helm not found"
  assert_output_contains "make tools"
  refute_called "kind create"
  refute_called "build -f apps/webapp/Dockerfile"
  refute_called "istioctl"
  [[ ! -s "${STUB_STATE}/kind-clusters" ]]
}

@test "every missing tool is named at once" {
  remove_stub kind
  remove_stub istioctl
  run_script cluster-up.sh
  assert_failure
  assert_output_contains "kind not found"
  assert_output_contains "istioctl not found"
  refute_called "kind"
}

@test "a docker daemon that does not answer stops up before anything is created" {
  export STUB_DOCKER_DOWN=1
  run_script cluster-up.sh
  assert_failure
  assert_output_contains "daemon does not answer"
  refute_called "kind create"
}

@test "an istioctl of another version than ISTIO_VERSION is refused before anything is created" {
  export STUB_ISTIOCTL_VERSION=1.20.3
  run_script cluster-up.sh
  assert_failure
  assert_output_contains "istioctl 1.20.3"
  assert_output_contains "ISTIO_VERSION=${ISTIO_VERSION}"
  refute_called "kind create"
}

@test "an older Istio in the cluster is upgraded to the pin" {
  given_cluster stable
  echo 1.20.3 >"${STUB_STATE}/istio-version"
  run_script cluster-up.sh
  assert_status 0
  assert_called "istioctl --context kind-rollouts install -y -f scripts/istio-operator.yaml"
  assert_output_contains "upgraded to ${ISTIO_VERSION} (was 1.20.3)"
  [[ "$(cat "${STUB_STATE}/istio-version")" == "${ISTIO_VERSION}" ]]
}

@test "CLUSTER_NAME names the cluster and every call uses its context" {
  export CLUSTER_NAME=demo
  run_script cluster-up.sh
  assert_status 0
  assert_called "kind create cluster --name demo "
  assert_called "kind load docker-image --name demo webapp:v1"
  # no cluster call without the context of the kind cluster
  local stray
  stray="$(grep -E '^(kubectl|helm|istioctl) ' "${STUB_LOG}" |
    grep -v -e '--context kind-demo' -e '--kube-context kind-demo' -e '^kubectl config get-contexts' \
      -e '^istioctl version' -e '^helm version' || true)"
  [[ -z "${stray}" ]] || { echo "calls without --context kind-demo: ${stray}" >&2; false; }
}

@test "a cluster whose context was removed from the kubeconfig gets it back" {
  given_cluster stable
  : >"${STUB_STATE}/contexts"
  run_script cluster-up.sh
  assert_status 0
  assert_called "kind export kubeconfig --name rollouts"
  assert_output_contains "kube context kind-rollouts restored"
}

@test "a gateway that does not route x-canary to v2 fails the smoke test, with state" {
  export STUB_APP_VERSION=v1 UP_TIMEOUT=0
  run_script cluster-up.sh
  assert_failure
  assert_output_contains "timed out"
  assert_output_contains "x-canary: always to answer v2"
  assert_output_contains "last x-app-version: 'v1'"
}

@test "the images are the chart's enabled versions: a v3 added to values.yaml is built and loaded, a disabled one is not" {
  # versions.v3 after v2, and v2 disabled, in the values file's own layout.
  awk '{ print } /^    color: blue$/ && !done { print "  v3:\n    tag: v3-rc1\n    color: blue"; done = 1 }' \
    "${REAL_ROOT}/charts/webapp/values.yaml" |
    sed '/^  v2:$/,/^  v3:$/ s/^    enabled: true$/    enabled: false/' >"${REPO}/charts/webapp/values.yaml"
  run_script cluster-up.sh
  assert_status 0
  assert_order \
    "$(build_call v1 v1)" \
    "kind load docker-image --name rollouts webapp:v1" \
    "$(build_call v3 v3-rc1)" \
    "kind load docker-image --name rollouts webapp:v3-rc1"
  refute_called "webapp:v2"
  assert_output_contains ">>> images webapp:v1, webapp:v3-rc1 into kind"
}

@test "values.yaml that the stages package cannot read stops up before anything is created" {
  printf 'versions: {}\n' >"${REPO}/charts/webapp/values.yaml"
  run_script cluster-up.sh
  assert_failure
  assert_output_contains "versions: must be a non-empty mapping"
  refute_called "kind create"
  refute_called "build -f apps/webapp/Dockerfile"
}

@test "the host port taken: up stops before the cluster is created" {
  hold_port
  run_script cluster-up.sh
  kill "${HOLDER}"
  assert_failure
  assert_output_contains "port ${GATEWAY_PORT} is in use"
  refute_called "kind create"
  refute_called "build -f apps/webapp/Dockerfile"
  refute_called "istioctl --context"
  [[ ! -s "${STUB_STATE}/kind-clusters" ]]
}

@test "a GATEWAY_PORT that is not a port is bad input: up stops before anything is created" {
  GATEWAY_PORT=80a run_script cluster-up.sh
  assert_status 2
  assert_output_contains "GATEWAY_PORT='80a' is not a port: expected an integer from 1 to 65535"
  refute_called "kind create"
  GATEWAY_PORT=70000 run_script cluster-up.sh
  assert_status 2
  refute_called "kind create"
}

@test "the host port held by our own cluster is no obstacle to a second up" {
  given_cluster stable
  hold_port
  run_script cluster-up.sh
  kill "${HOLDER}"
  assert_status 0
  refute_called "kind create"
}

@test "the image's Node is the pin: NODE_VERSION is a required build arg of both FROM lines" {
  local dockerfile="${REAL_ROOT}/apps/webapp/Dockerfile"
  grep -qx 'ARG NODE_VERSION' "${dockerfile}"
  # shellcheck disable=SC2016
  [[ "$(grep -cF 'FROM node:${NODE_VERSION:?}-' "${dockerfile}")" -eq 2 ]]
  run grep -E '^FROM node:[0-9]' "${dockerfile}"
  assert_status 1
}

@test "versions.env derives kubectl's pin and the Kubernetes version from the kind node image" {
  local tag="${KIND_NODE_IMAGE%@*}"
  tag="${tag##*:}"
  [[ "${KUBECTL_VERSION}" == "${tag}" ]]
  [[ "${KUBE_VERSION}" == "${tag#v}" ]]
  run_script cluster-up.sh
  assert_status 0
  run_script doctor.sh
  assert_status 0
  assert_output_contains "ok     kubectl ${KUBECTL_VERSION#v}"
}

@test "a second up with unchanged sources loads no image and restarts no pod, even when each build gets a new manifest digest" {
  # Docker's containerd image store reports the digest of the manifest or index as the image id; with a provenance
  # attestation (build timestamps) that digest is new at every build. What the node has is compared by content.
  export STUB_IMAGE_STORE=containerd STUB_NEW_MANIFEST_DIGEST=1
  run_script cluster-up.sh
  assert_status 0
  local first_id
  first_id="$(cat "${STUB_STATE}/image-webapp-v1")"
  : >"${STUB_LOG}"

  run_script cluster-up.sh
  assert_status 0
  assert_called "$(build_call v1 v1)"
  [[ "$(cat "${STUB_STATE}/image-webapp-v1")" != "${first_id}" ]]
  refute_called "kind load"
  refute_called "rollout restart"
  assert_output_contains "webapp:v1 unchanged webapp:v2 unchanged"
  refute_output_contains "pods restarted"
}

@test "buildx builds without the provenance attestation: on the containerd image store an unchanged rebuild keeps its digest" {
  export STUB_IMAGE_STORE=containerd
  run_script cluster-up.sh
  assert_status 0
  local first_id
  first_id="$(cat "${STUB_STATE}/image-webapp-v1")"
  run_script cluster-up.sh
  assert_status 0
  [[ "$(cat "${STUB_STATE}/image-webapp-v1")" == "${first_id}" ]]
  assert_output_contains "webapp:v1 unchanged"
}

@test "changed sources: the new image is loaded and the pods of the release are restarted on it" {
  run_script cluster-up.sh
  assert_status 0
  : >"${STUB_LOG}"
  export STUB_IMAGE_CONTENT=src2
  run_script cluster-up.sh
  assert_status 0
  assert_order \
    "$(build_call v1 v1)" \
    "kind load docker-image --name rollouts webapp:v1" \
    "helm --kube-context kind-rollouts upgrade --install webapp" \
    "kubectl --context kind-rollouts -n rollouts rollout restart deployment -l app=webapp"
  assert_output_contains "webapp:v1 loaded webapp:v2 loaded"
  assert_output_contains "exists, upgraded in place, pods restarted on the new images"
}

@test "a new cluster gets the images loaded although Docker already has them unchanged" {
  run_script cluster-up.sh
  assert_status 0
  run_script cluster-down.sh
  assert_status 0
  : >"${STUB_LOG}"
  run_script cluster-up.sh
  assert_status 0
  assert_called "kind load docker-image --name rollouts webapp:v1"
  assert_called "kind load docker-image --name rollouts webapp:v2"
  refute_called "rollout restart"
}

@test "docker without buildx: the legacy builder builds (DOCKER_BUILDKIT=0, no BuildKit flags) and a second up loads nothing" {
  # DOCKER_BUILDKIT=1 in the environment makes a docker CLI without buildx refuse to build.
  export STUB_NO_BUILDX=1 DOCKER_BUILDKIT=1 STUB_IMAGE_STORE=containerd
  run_script cluster-up.sh
  assert_status 0
  assert_called "docker build -f apps/webapp/Dockerfile --build-arg NODE_VERSION=${NODE24_VERSION} --build-arg APP_VERSION=v1 --build-arg GIT_SHA=abc1234 -t webapp:v1 ."
  refute_called "docker buildx build"
  assert_output_contains "(legacy builder)"
  : >"${STUB_LOG}"
  run_script cluster-up.sh
  assert_status 0
  refute_called "kind load"
  refute_called "rollout restart"
  assert_output_contains "webapp:v1 unchanged webapp:v2 unchanged"
}

@test "a docker on cgroup v1 stops up before the cluster is created (the node image needs cgroup v2)" {
  export STUB_DOCKER_CGROUP=1
  run_script cluster-up.sh
  assert_failure
  assert_output_contains "docker runs on cgroup v1"
  assert_output_contains "Kubernetes ${KUBE_VERSION} needs cgroup v2"
  assert_output_contains "systemd.unified_cgroup_hierarchy=1"
  refute_called "kind create"
  refute_called "build -f apps/webapp/Dockerfile"
}

@test "helm 4: the chart is applied server-side with conflicts forced, and up waits for it with the watcher strategy" {
  # Another field manager (a `kubectl scale`) owns a field of the chart: server-side apply without
  # --force-conflicts would fail where Helm 3's client-side apply overwrote it.
  export STUB_HELM_CONFLICT=1
  run_script cluster-up.sh
  assert_status 0
  [[ "$(cat "${STUB_STATE}/helm-release-method")" == ssa ]]
  [[ "$(cat "${STUB_STATE}/helm-wait")" == watcher ]]
}

@test "a release installed by Helm 3 (client-side apply) is upgraded server-side by Helm 4" {
  given_cluster stable
  echo csa >"${STUB_STATE}/helm-release-method"
  export STUB_HELM_CONFLICT=1
  run_script cluster-up.sh
  assert_status 0
  assert_output_contains "exists, upgraded in place"
  [[ "$(cat "${STUB_STATE}/helm-release-method")" == ssa ]]
}

@test "a Helm 3 on PATH is refused before anything is created (the helm calls use Helm 4's flags)" {
  export STUB_HELM_VERSION=3.19.0
  run_script cluster-up.sh
  assert_failure
  assert_output_contains "helm 3.19.0"
  assert_output_contains "is not Helm 4"
  assert_output_contains "HELM_VERSION=${HELM_VERSION}"
  assert_output_contains "make tools"
  refute_called "kind create"
}

@test "the helm calls of up parse with the real Helm of the pin (bin/helm, when the test set-up built it)" {
  local real="${REAL_ROOT}/bin/helm" call args
  [[ -x "${real}" ]] || skip "no bin/helm ('make test' builds it)"
  run "${real}" version --template '{{.Version}}'
  [[ "${output}" == "${HELM_VERSION}" ]] || skip "bin/helm is '${output}', not ${HELM_VERSION}"
  run_script cluster-up.sh
  assert_status 0
  # Flags are parsed before helm looks for the cluster: with no kubeconfig, a call whose flags Helm 4 accepts
  # fails only on the cluster.
  for call in "upgrade --install" "status webapp"; do
    call="$(grep -m 1 -F "helm --kube-context kind-rollouts ${call}" "${STUB_LOG}")"
    read -r -a args <<<"${call#helm }"
    run env HOME="${SANDBOX}" KUBECONFIG="${SANDBOX}/no-kubeconfig" "${real}" "${args[@]}"
    assert_failure
    assert_output_contains 'kubernetes cluster unreachable: context "kind-rollouts" does not exist'
  done
}

@test "up installs Istio's Prometheus addon of the pinned release after Istio, and waits for it" {
  run_script cluster-up.sh
  assert_status 0
  assert_order \
    "istioctl --context kind-rollouts install -y -f scripts/istio-operator.yaml" \
    "kubectl --context kind-rollouts apply -f https://raw.githubusercontent.com/istio/istio/${ISTIO_VERSION}/samples/addons/prometheus.yaml" \
    "kubectl --context kind-rollouts -n istio-system rollout status deployment/prometheus" \
    "helm --kube-context kind-rollouts upgrade --install webapp"
  assert_output_contains "<<< Prometheus (https://raw.githubusercontent.com/istio/istio/${ISTIO_VERSION}/samples/addons/prometheus.yaml):"
}

@test "a healthy up sets every fault knob of the scenarios off on the chart" {
  run_script cluster-up.sh
  assert_status 0
  assert_called "--set-string versions.v2.env.FAULT_DELAY_MS=0 --set-string versions.v2.env.FAULT_ERROR_RATE=0"
  refute_called "FAULT_ERROR_RATE=0.05"
}

@test "SCENARIO=bad-v2 up gives v2 the scenario's error rate through the chart values, v1 untouched" {
  SCENARIO=bad-v2 run_script cluster-up.sh
  assert_status 0
  assert_called "helm --kube-context kind-rollouts upgrade --install webapp charts/webapp -n rollouts --server-side=true --force-conflicts --wait=watcher --timeout 5m --set-string versions.v2.env.FAULT_DELAY_MS=0 --set-string versions.v2.env.FAULT_ERROR_RATE=0.05"
  refute_called "versions.v1.env"
  assert_output_contains "scenario bad-v2"
}

@test "an unknown SCENARIO stops up with the list of scenarios before anything is created" {
  SCENARIO=worse-v2 run_script cluster-up.sh
  assert_status 2
  assert_output_contains 'unknown scenario "worse-v2"; scenarios: bad-v2, slow-v2'
  refute_called "kind create cluster"
  refute_called "upgrade --install"
}

@test "API=gateway-api: the Gateway API CRDs first, Istio without its classic gateway, the Gateway API's Gateway, the HTTPRoute stable" {
  export API=gateway-api
  run_script cluster-up.sh
  assert_status 0
  assert_order \
    "kind create cluster --name rollouts" \
    "kubectl --context kind-rollouts apply --server-side -f https://github.com/kubernetes-sigs/gateway-api/releases/download/${GATEWAY_API_VERSION}/standard-install.yaml" \
    "istioctl --context kind-rollouts install -y -f scripts/istio-operator.yaml --set components.ingressGateways[0].enabled=false" \
    "kubectl --context kind-rollouts apply -f istio/base/gateway-api" \
    "kubectl --context kind-rollouts -n rollouts wait --for=condition=Programmed gateways.gateway.networking.k8s.io/webapp-gateway" \
    "kubectl --context kind-rollouts -n rollouts rollout status deployment/webapp-gateway-istio" \
    "rollout lint --stage stable --api gateway-api" \
    "kubectl --context kind-rollouts apply -f ${STUB_STATE}/stages/gateway-api/stable.yaml"
  refute_called "apply -f istio/base/gateway.yaml"
  refute_called "rollout status deployment/istio-ingressgateway"
  [[ "$(cat "${STUB_STATE}/hr-stage")" == stable ]]
  assert_output_contains "+ kubectl --context kind-rollouts apply -f istio/base/gateway-api"
}

@test "an unknown API stops make up before anything is created" {
  export API=gateway
  run_script cluster-up.sh
  assert_status 2
  assert_output_contains "API must be 'virtualservice' or 'gateway-api'"
  refute_called "kind create"
}
