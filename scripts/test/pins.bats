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
