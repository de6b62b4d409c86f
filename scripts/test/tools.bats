#!/usr/bin/env bats
# Each @test runs in a subshell of its own: variables it exports are meant to stay in it.
# shellcheck disable=SC2030,SC2031
# scripts/tools.sh (`make tools`) against stub binaries: downloads are served by the curl stub from fixtures made
# here (fake tools that print the pinned version), so URLs, checksums and unpacking are checked without a network.

setup() {
  load helpers
  setup_sandbox
  export STUB_DOWNLOADS="${SANDBOX}/downloads"
  mkdir -p "${STUB_DOWNLOADS}"
  use_stub uname
  export STUB_UNAME_S=Linux STUB_UNAME_M=x86_64
}

# fake_tool FILE VERSION_LINE: an executable that prints VERSION_LINE whatever it is asked.
fake_tool() {
  mkdir -p "$(dirname "$1")"
  printf '#!/bin/sh\necho "%s"\n' "$2" >"$1"
  chmod +x "$1"
}

sum_of() { sha256sum "$1" | cut -d' ' -f1; }

# release_fixtures OS ARCH: the release files of the five pinned tools, with their published checksum files.
release_fixtures() {
  local os="$1" arch="$2" d="${STUB_DOWNLOADS}" w="${SANDBOX}/work"
  mkdir -p "${w}"
  fake_tool "${d}/kind-${os}-${arch}" "kind ${KIND_VERSION} go1.24.5 ${os}/${arch}"
  echo "$(sum_of "${d}/kind-${os}-${arch}")  kind-${os}-${arch}" >"${d}/kind-${os}-${arch}.sha256sum"

  fake_tool "${d}/kubectl" "Client Version: ${KUBECTL_VERSION}"
  sum_of "${d}/kubectl" >"${d}/kubectl.sha256"

  fake_tool "${w}/${os}-${arch}/helm" "${HELM_VERSION}"
  tar -czf "${d}/helm-${HELM_VERSION}-${os}-${arch}.tar.gz" -C "${w}" "${os}-${arch}/helm"
  echo "$(sum_of "${d}/helm-${HELM_VERSION}-${os}-${arch}.tar.gz")  helm-${HELM_VERSION}-${os}-${arch}.tar.gz" \
    >"${d}/helm-${HELM_VERSION}-${os}-${arch}.tar.gz.sha256sum"

  fake_tool "${w}/istioctl" "client version: ${ISTIO_VERSION}"
  tar -czf "${d}/istioctl-${ISTIO_VERSION}-${os}-${arch}.tar.gz" -C "${w}" istioctl
  echo "$(sum_of "${d}/istioctl-${ISTIO_VERSION}-${os}-${arch}.tar.gz")  istioctl-${ISTIO_VERSION}-${os}-${arch}.tar.gz" \
    >"${d}/istioctl-${ISTIO_VERSION}-${os}-${arch}.tar.gz.sha256"

  local k6dir="k6-${K6_VERSION}-${os}-${arch}"
  fake_tool "${w}/${k6dir}/k6" "k6 ${K6_VERSION} (commit/abc, go1.24.5, ${os}/${arch})"
  tar -czf "${d}/${k6dir}.tar.gz" -C "${w}" "${k6dir}/k6"
  {
    echo "0000000000000000000000000000000000000000000000000000000000000000  k6-${K6_VERSION}-linux-arm64.tar.gz"
    echo "$(sum_of "${d}/${k6dir}.tar.gz")  ${k6dir}.tar.gz"
  } >"${d}/k6-${K6_VERSION}-checksums.txt"
}

@test "tools installs the five pinned tools into LOCALBIN from their release downloads" {
  release_fixtures linux amd64
  local t
  for t in kind kubectl helm istioctl k6; do remove_stub "${t}"; done
  run_script tools.sh
  assert_status 0
  assert_called "https://github.com/kubernetes-sigs/kind/releases/download/${KIND_VERSION}/kind-linux-amd64"
  assert_called "https://dl.k8s.io/release/${KUBECTL_VERSION}/bin/linux/amd64/kubectl.sha256"
  assert_called "https://get.helm.sh/helm-${HELM_VERSION}-linux-amd64.tar.gz.sha256sum"
  assert_called "https://github.com/istio/istio/releases/download/${ISTIO_VERSION}/istioctl-${ISTIO_VERSION}-linux-amd64.tar.gz"
  assert_called "https://github.com/grafana/k6/releases/download/${K6_VERSION}/k6-${K6_VERSION}-checksums.txt"
  for t in kind kubectl helm istioctl k6; do
    [[ -x "${LOCALBIN}/${t}" ]]
  done
  [[ "$("${LOCALBIN}/istioctl")" == "client version: ${ISTIO_VERSION}" ]]
  assert_output_contains "<<< k6 ${K6_VERSION#v} (linux/amd64): installed ${K6_VERSION#v} into ${LOCALBIN}"
}

@test "a download whose checksum does not match is refused and nothing is installed" {
  release_fixtures linux amd64
  remove_stub kind
  echo "tampered" >>"${STUB_DOWNLOADS}/kind-linux-amd64"
  run_script tools.sh kind
  assert_failure
  assert_output_contains "checksum mismatch for kind-linux-amd64"
  [[ ! -e "${LOCALBIN}/kind" ]]
  # the temporary download is gone too
  [[ -z "$(ls -A "${SANDBOX}/tmp")" ]]
}

@test "a release without its checksum file is not installed" {
  release_fixtures linux amd64
  remove_stub helm
  rm "${STUB_DOWNLOADS}/helm-${HELM_VERSION}-linux-amd64.tar.gz.sha256sum"
  run_script tools.sh helm
  assert_failure
  assert_output_contains "download failed: https://get.helm.sh/helm-${HELM_VERSION}-linux-amd64.tar.gz.sha256sum"
  [[ ! -e "${LOCALBIN}/helm" ]]
}

@test "a tool already at the pinned version is skipped without a download" {
  run_script tools.sh
  assert_status 0
  refute_called "curl"
  assert_output_contains "<<< kind ${KIND_VERSION#v} (linux/amd64): ${KIND_VERSION#v} present"
  assert_output_contains "skipped"
}

@test "a tool at another version on PATH gets the pin installed into LOCALBIN" {
  release_fixtures linux amd64
  export STUB_KUBECTL_VERSION=1.30.2
  run_script tools.sh kubectl
  assert_status 0
  assert_output_contains "installed ${KUBECTL_VERSION#v} into ${LOCALBIN} (was 1.30.2 on PATH)"
  [[ -x "${LOCALBIN}/kubectl" ]]
}

@test "macOS arm64 downloads Istio's osx-arm64 and k6's macos-arm64 archives" {
  export STUB_UNAME_S=Darwin STUB_UNAME_M=arm64
  remove_stub istioctl
  remove_stub k6
  run_script tools.sh istioctl
  assert_failure
  assert_called "https://github.com/istio/istio/releases/download/${ISTIO_VERSION}/istioctl-${ISTIO_VERSION}-osx-arm64.tar.gz"
  run_script tools.sh k6
  assert_failure
  assert_called "https://github.com/grafana/k6/releases/download/${K6_VERSION}/k6-${K6_VERSION}-macos-arm64.zip"
}

@test "macOS amd64 downloads Istio's osx archive and kind's darwin-amd64 binary" {
  export STUB_UNAME_S=Darwin STUB_UNAME_M=x86_64
  remove_stub istioctl
  remove_stub kind
  run_script tools.sh istioctl
  assert_called "istioctl-${ISTIO_VERSION}-osx.tar.gz"
  run_script tools.sh kind
  assert_called "kind/releases/download/${KIND_VERSION}/kind-darwin-amd64"
}

@test "an unknown tool is a usage error" {
  run_script tools.sh kustomize
  assert_status 2
  assert_output_contains "unknown tool 'kustomize' (known: kind kubectl helm istioctl k6)"
}

@test "an unsupported CPU architecture is refused" {
  export STUB_UNAME_M=s390x
  run_script tools.sh
  assert_failure
  assert_output_contains "unsupported CPU architecture 's390x'"
  refute_called "curl"
}

@test "Istio comes from addresses that still serve 1.31: GitHub releases and raw.githubusercontent.com, not the retired GCP hosts" {
  # Istio 1.31 stopped publishing to gcr.io/istio-release, registry.istio.io and istio-release.storage.googleapis.com.
  run grep -nE 'gcr\.io/istio-release|registry\.istio\.io|istio-release\.storage\.googleapis\.com' \
    "${REAL_ROOT}"/scripts/*.sh "${REAL_ROOT}"/scripts/*.yaml
  assert_status 1
  # shellcheck disable=SC2016 # the scripts' text
  grep -qF 'base="https://github.com/istio/istio/releases/download/${ISTIO_VERSION}"' "${REAL_ROOT}/scripts/tools.sh"
  # shellcheck disable=SC2016
  grep -qF 'ADDONS_URL="https://raw.githubusercontent.com/istio/istio/${ISTIO_VERSION}/samples/addons"' \
    "${REAL_ROOT}/scripts/dashboards.sh"
}
