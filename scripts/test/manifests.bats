#!/usr/bin/env bats
# Each @test runs in a subshell of its own: variables it exports are meant to stay in it.
# shellcheck disable=SC2030,SC2031
# The cluster-path files of scripts/ agree with each other and render: kind maps host 8080 to the node port the
# IstioOperator gives the ingress gateway, the operator renders with the pinned istioctl (offline `manifest
# generate`), and the namespace is injected.

setup() {
  load helpers
}

# yaml_value KEY FILE: the first value of "KEY: value" (indentation ignored, quotes dropped).
yaml_value() { awk -v k="$1:" '$1 == k || ($1 == "-" && $2 == k) { v = $NF; gsub(/"/, "", v); print v; exit }' "$2"; }

@test "kind maps GATEWAY_PORT (GATEWAY_URL's port, filled in by cluster-up.sh) to the node port of the gateway's http2 port" {
  local kind_cfg="${REAL_ROOT}/scripts/kind-config.yaml" operator="${REAL_ROOT}/scripts/istio-operator.yaml"
  # shellcheck disable=SC2016 # the placeholder as written in the file
  [[ "$(yaml_value hostPort "${kind_cfg}")" == '${GATEWAY_PORT}' ]]
  # GATEWAY_URL's default follows the same knob.
  local port url
  # shellcheck disable=SC2016 # expanded by the inner bash, after lib.sh read defaults.env
  read -r port url < <(env -i PATH="${PATH}" bash -c 'source "$1/scripts/lib.sh" && echo "${GATEWAY_PORT} ${GATEWAY_URL}"' _ "${REAL_ROOT}")
  [[ -n "${port}" && "${url}" == "http://localhost:${port}" ]]
  [[ "$(yaml_value listenAddress "${kind_cfg}")" == 127.0.0.1 ]]
  local container_port node_port
  container_port="$(yaml_value containerPort "${kind_cfg}")"
  node_port="$(yaml_value nodePort "${operator}")"
  [[ -n "${node_port}" && "${container_port}" == "${node_port}" ]]
  # the node image is never written in the kind config: cluster-up.sh passes KIND_NODE_IMAGE
  ! grep -q 'image:' "${kind_cfg}" || false
}

@test "the IstioOperator renders: NodePort 30080 -> gateway 8080, CNI node agent, gateway labelled for istio/base" {
  local istioctl="${REAL_ROOT}/bin/istioctl"
  [[ -x "${istioctl}" ]] || skip "bin/istioctl not installed (hack/ci-tools.sh istioctl)"
  local out="${BATS_TEST_TMPDIR}/istio.yaml"
  "${istioctl}" manifest generate -f "${REAL_ROOT}/scripts/istio-operator.yaml" >"${out}" 2>"${BATS_TEST_TMPDIR}/err" || {
    cat "${BATS_TEST_TMPDIR}/err" >&2
    false
  }
  local svc
  svc="$(awk 'BEGIN { RS = "\n---\n" } /kind: Service\n/ && /\n  name: istio-ingressgateway\n/' "${out}")"
  [[ "${svc}" == *"type: NodePort"* ]]
  [[ "${svc}" == *"nodePort: 30080"*"port: 80"*"targetPort: 8080"* ]]
  [[ "${svc}" == *"istio: ingressgateway"* ]]
  # the selector of istio/base/gateway.yaml
  grep -q 'istio: ingressgateway' "${REAL_ROOT}/istio/base/gateway.yaml"
  awk 'BEGIN { RS = "\n---\n" } /kind: DaemonSet\n/ && /name: istio-cni-node\n/ && /namespace: istio-system\n/' "${out}" | grep -q .
  awk 'BEGIN { RS = "\n---\n" } /kind: Deployment\n/ && /\n  name: istiod\n/' "${out}" | grep -q .
}

@test "the namespace is rollouts, injected, and enforces the baseline Pod Security Standard" {
  local ns="${REAL_ROOT}/scripts/namespace.yaml"
  [[ "$(yaml_value name "${ns}")" == rollouts ]]
  [[ "$(yaml_value istio-injection "${ns}")" == enabled ]]
  [[ "$(yaml_value pod-security.kubernetes.io/enforce "${ns}")" == baseline ]]
  [[ "$(yaml_value pod-security.kubernetes.io/warn "${ns}")" == restricted ]]
}

@test "the Gateway API Gateway (API=gateway-api) is reached at the same host port: its Service is patched onto kind's node port" {
  local kind_cfg="${REAL_ROOT}/scripts/kind-config.yaml" gw="${REAL_ROOT}/istio/base/gateway-api/gateway.yaml"
  local options="${REAL_ROOT}/istio/base/gateway-api/gateway-options.yaml"
  # Istio deploys it itself (class istio), as a NodePort Service, patched by the ConfigMap it names.
  [[ "$(yaml_value gatewayClassName "${gw}")" == istio ]]
  grep -q 'networking.istio.io/service-type: NodePort' "${gw}"
  [[ "$(awk '/parametersRef:/ { p = 1 } p && $1 == "name:" { print $2; exit }' "${gw}")" == "$(yaml_value name "${options}")" ]]
  # The listener's port is the port the patch puts on kind's node port (kind maps host 8080 to it).
  local listener_port patched_port node_port
  listener_port="$(awk '/listeners:/ { l = 1 } l && $1 == "port:" { print $2; exit }' "${gw}")"
  patched_port="$(yaml_value port "${options}")"
  node_port="$(yaml_value nodePort "${options}")"
  [[ -n "${listener_port}" && "${listener_port}" == "${patched_port}" ]]
  [[ "${node_port}" == "$(yaml_value containerPort "${kind_cfg}")" ]]
  # The HTTPRoute stages bind to this Gateway by name.
  local f
  for f in "${REAL_ROOT}"/istio/stages/gateway-api/*.yaml; do
    grep -qE "^    - name: $(yaml_value name "${gw}")$" "${f}" || { echo "${f} has no parentRef to the Gateway"; return 1; }
  done
}
