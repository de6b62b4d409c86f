#!/usr/bin/env bash
# Builds the Istio oracle (tooling/istio-oracle) against the istio.io/istio pseudo-version pinned in versions.env
# (ISTIO_GO_VERSION), caches the binary in
#   .cache/tools/istio-oracle/<ISTIO_GO_VERSION>-<hash of go.mod, go.sum, the non-test *.go, Go version, tag>/
# and links bin/istio-oracle to it. A cache hit only hashes; a miss runs `go build` (about 5 minutes cold).
# Usage: tooling/istio-oracle/build.sh
set -o errexit -o nounset -o pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "${HERE}/../.." && pwd)"
# shellcheck source=../../versions.env
source "${REPO_ROOT}/versions.env"

log() { printf '>>> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

command -v go >/dev/null || die "go is required to build the Istio oracle (install Go 1.26+)"

# go.mod must require exactly the pinned Istio module.
pinned="$(awk '$1 == "istio.io/istio" { print $2 } $1 == "require" && $2 == "istio.io/istio" { print $3 }' "${HERE}/go.mod")"
[[ "${pinned}" == "${ISTIO_GO_VERSION}" ]] ||
  die "tooling/istio-oracle/go.mod requires istio.io/istio ${pinned:-(none)} but versions.env pins ISTIO_GO_VERSION=${ISTIO_GO_VERSION}; run: (cd tooling/istio-oracle && GOFLAGS=-mod=mod go get istio.io/istio@${ISTIO_GO_VERSION} && go mod tidy)"

# The Gateway API CRDs the oracle admits objects with (crds.go) are those of the module go.mod requires, which
# must be the release versions.env pins.
gateway_api="$(awk '$1 == "sigs.k8s.io/gateway-api" { print $2 }' "${HERE}/go.mod")"
[[ "${gateway_api}" == "${GATEWAY_API_VERSION}" ]] ||
  die "tooling/istio-oracle/go.mod requires sigs.k8s.io/gateway-api ${gateway_api:-(none)} but versions.env pins GATEWAY_API_VERSION=${GATEWAY_API_VERSION} (Istio's own requirement)"

export GOFLAGS=-mod=mod GOTOOLCHAIN=local CGO_ENABLED=0
ldflags="-s -w -X main.istioTag=${ISTIO_GO_TAG}"
go_version="$(go env GOVERSION)"

hash="$(
  cd "${HERE}"
  {
    printf 'go %s\nldflags %s\ngateway-api %s\n' "${go_version}" "${ldflags}" "${GATEWAY_API_VERSION}"
    find . -maxdepth 1 -type f \( -name go.mod -o -name go.sum -o \( -name '*.go' ! -name '*_test.go' \) \) -print |
      LC_ALL=C sort | xargs sha256sum
  } | sha256sum | cut -c1-16
)"
dir="${REPO_ROOT}/.cache/tools/istio-oracle/${ISTIO_GO_VERSION}-${hash}"
bin="${REPO_ROOT}/bin"
now_ms() { date +%s%3N; }
start=$(now_ms)
if [[ -x "${dir}/istio-oracle" ]]; then
  log "istio-oracle cached (${ISTIO_GO_VERSION}-${hash})"
else
  log "building istio-oracle against istio.io/istio ${ISTIO_GO_VERSION} (Istio ${ISTIO_GO_TAG}) with ${go_version}"
  rm -rf "${dir}.tmp" && mkdir -p "${dir}.tmp"
  (cd "${HERE}" && go build -trimpath -ldflags "${ldflags}" -o "${dir}.tmp/istio-oracle" .)
  # The standard-channel CRDs of the pinned Gateway API module (its zip holds config/crd/), beside the binary.
  crds="$(cd "${HERE}" && go list -m -f '{{.Dir}}' "sigs.k8s.io/gateway-api")/config/crd/standard"
  [[ -d "${crds}" ]] || die "sigs.k8s.io/gateway-api ${GATEWAY_API_VERSION} has no ${crds#*@*/}"
  mkdir -p "${dir}.tmp/crds"
  cp "${crds}"/*.yaml "${dir}.tmp/crds/"
  rm -rf "${dir}" && mv "${dir}.tmp" "${dir}"
fi
mkdir -p "${bin}"
ln -sfn "${dir}/istio-oracle" "${bin}/istio-oracle"
elapsed=$(($(now_ms) - start))
log "istio-oracle ready in $((elapsed / 1000)).$(printf %03d $((elapsed % 1000)))s: bin/istio-oracle -> ${dir#"${REPO_ROOT}/"}/istio-oracle"
