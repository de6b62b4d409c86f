#!/usr/bin/env bats
# The pins users read in README.md agree with versions.env, where each is written once; and they sit inside the
# support matrix the README states (Istio 1.31 supports Kubernetes 1.32 to 1.36).

setup() {
  load helpers
  # shellcheck source=versions.env
  source "${REAL_ROOT}/versions.env"
  README="${REAL_ROOT}/README.md"
}

# pins_row: the README's "Pinned tools" row of the prerequisites table.
# shellcheck disable=SC2016 # backticks of the Markdown, not a command
pins_row() { grep -F '| Pinned tools (`versions.env`) |' "${README}"; }

@test "the README's pinned-tools row names every user-facing pin of versions.env" {
  local row
  row="$(pins_row)"
  [[ -n "${row}" ]]
  local tag="${KIND_NODE_IMAGE%@*}"
  local pin
  for pin in "kind ${KIND_VERSION}" "\`${tag}\`" "kubectl ${KUBECTL_VERSION}" "Helm ${HELM_VERSION}" \
    "istioctl ${ISTIO_VERSION}" "k6 ${K6_VERSION}"; do
    [[ "${row}" == *"${pin}"* ]] || { echo "README's pinned-tools row lacks '${pin}': ${row}"; return 1; }
  done
}

@test "the kind node's Kubernetes minor is inside Istio's supported range the README states" {
  local row minor
  row="$(pins_row)"
  minor="$(echo "${KUBE_VERSION}" | cut -d. -f2)"
  [[ "${row}" =~ Istio\ ${ISTIO_VERSION%.*}\'s\ supported\ 1\.([0-9]+)\ to\ 1\.([0-9]+) ]]
  ((minor >= BASH_REMATCH[1] && minor <= BASH_REMATCH[2]))
  [[ "${row}" == *"Kubernetes 1.${minor}"* ]]
}

@test "the offline Kubernetes schemas follow the node's Kubernetes minor" {
  [[ "${KUBERNETES_VALIDATE_VERSION%.*}" == "${KUBE_VERSION%.*}" ]]
}

@test "the offline Istio build is the pinned Istio minor" {
  [[ "${ISTIO_GO_TAG%.*}" == "${ISTIO_VERSION%.*}" ]]
}

@test "the Gateway API pin is the release Istio's own module requires (what Istio 1.31 is built and tested with)" {
  [[ "${GATEWAY_API_VERSION}" =~ ^v[0-9]+\.[0-9]+\.[0-9]+$ ]]
  local oracle="${REAL_ROOT}/tooling/istio-oracle"
  # The oracle's go.mod requires it (build.sh refuses to build otherwise) ...
  [[ "$(awk '$1 == "sigs.k8s.io/gateway-api" { print $2 }' "${oracle}/go.mod")" == "${GATEWAY_API_VERSION}" ]]
  # ... and it is what istio.io/istio at ISTIO_GO_VERSION requires (go mod graph, offline once the modules are cached).
  command -v go >/dev/null || skip "go is not installed"
  local graph
  graph="$(cd "${oracle}" && GOFLAGS=-mod=mod GOPROXY=off go mod graph 2>/dev/null)" || skip "the oracle's modules are not in the module cache"
  grep -qx "istio.io/istio@${ISTIO_GO_VERSION} sigs.k8s.io/gateway-api@${GATEWAY_API_VERSION}" <<<"${graph}"
}
