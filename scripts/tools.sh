#!/usr/bin/env bash
# `make tools`: install the pinned kind, kubectl, helm, istioctl and k6 (versions.env) into ./bin (LOCALBIN) from
# their official release downloads, each verified against the SHA-256 its project publishes. A tool already on
# PATH (./bin first) at the pinned version is skipped. Linux and macOS, amd64 and arm64.
#
#   scripts/tools.sh [tool ...]      (no argument: all five)
#
# Needs curl, tar, and unzip for k6 on macOS.
set -o errexit -o nounset -o pipefail

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ALL_TOOLS=(kind kubectl helm istioctl k6)
OS=""
ARCH=""
WORK=""

sha256_of() {
  if have sha256sum; then
    sha256sum "$1" | awk '{ print $1 }'
  elif have shasum; then
    shasum -a 256 "$1" | awk '{ print $1 }'
  else
    die "neither sha256sum nor shasum found: cannot verify downloads"
  fi
}

download() {
  local url="$1" out="$2"
  retry 3 curl -fsSL --connect-timeout 20 -o "${out}" "${url}" || die "download failed: ${url}"
}

# verify FILE SUMS_FILE NAME: FILE's SHA-256 is the one SUMS_FILE gives for NAME (a "hash  name" line, or a file
# holding the bare hash).
verify() {
  local file="$1" sums="$2" name="$3" want got
  want="$(awk -v n="${name}" '$2 == n || $2 == "*" n { print $1; exit } NF == 1 { print $1; exit }' "${sums}")"
  [[ -n "${want}" ]] || die "no checksum for ${name} in $(basename "${sums}")"
  got="$(sha256_of "${file}")"
  [[ "${got}" == "${want}" ]] || die "checksum mismatch for ${name}: expected ${want}, got ${got} (download removed)"
}

# Each fetch_TOOL downloads, verifies and leaves the binary at ${WORK}/TOOL.
fetch_kind() {
  local name="kind-${OS}-${ARCH}"
  local base="https://github.com/kubernetes-sigs/kind/releases/download/${KIND_VERSION}"
  download "${base}/${name}" "${WORK}/${name}"
  download "${base}/${name}.sha256sum" "${WORK}/sums"
  verify "${WORK}/${name}" "${WORK}/sums" "${name}"
  mv "${WORK}/${name}" "${WORK}/kind"
}

fetch_kubectl() {
  local base="https://dl.k8s.io/release/${KUBECTL_VERSION}/bin/${OS}/${ARCH}"
  download "${base}/kubectl" "${WORK}/kubectl"
  download "${base}/kubectl.sha256" "${WORK}/sums"
  verify "${WORK}/kubectl" "${WORK}/sums" kubectl
}

# Helm 4 publishes as Helm 3 did (its Makefile and scripts/get-helm-4): get.helm.sh/helm-vX.Y.Z-OS-ARCH.tar.gz holding
# OS-ARCH/helm, with a .sha256sum ("hash  name") and a .sha256 (bare hash) beside it.
fetch_helm() {
  local name="helm-${HELM_VERSION}-${OS}-${ARCH}.tar.gz"
  download "https://get.helm.sh/${name}" "${WORK}/${name}"
  download "https://get.helm.sh/${name}.sha256sum" "${WORK}/sums"
  verify "${WORK}/${name}" "${WORK}/sums" "${name}"
  tar -xzf "${WORK}/${name}" -C "${WORK}" "${OS}-${ARCH}/helm"
  mv "${WORK}/${OS}-${ARCH}/helm" "${WORK}/helm"
}

fetch_istioctl() {
  # Istio names macOS "osx", and its amd64 macOS archive has no arch suffix.
  local platform
  case "${OS}-${ARCH}" in
    darwin-amd64) platform=osx ;;
    darwin-arm64) platform=osx-arm64 ;;
    *) platform="${OS}-${ARCH}" ;;
  esac
  local name="istioctl-${ISTIO_VERSION}-${platform}.tar.gz"
  local base="https://github.com/istio/istio/releases/download/${ISTIO_VERSION}"
  download "${base}/${name}" "${WORK}/${name}"
  download "${base}/${name}.sha256" "${WORK}/sums"
  verify "${WORK}/${name}" "${WORK}/sums" "${name}"
  tar -xzf "${WORK}/${name}" -C "${WORK}" istioctl
}

fetch_k6() {
  local platform ext
  case "${OS}" in
    darwin) platform="macos-${ARCH}" ext=zip ;;
    *) platform="${OS}-${ARCH}" ext=tar.gz ;;
  esac
  local dir="k6-${K6_VERSION}-${platform}"
  local name="${dir}.${ext}"
  local base="https://github.com/grafana/k6/releases/download/${K6_VERSION}"
  download "${base}/${name}" "${WORK}/${name}"
  download "${base}/k6-${K6_VERSION}-checksums.txt" "${WORK}/sums"
  verify "${WORK}/${name}" "${WORK}/sums" "${name}"
  if [[ "${ext}" == zip ]]; then
    require_tools unzip
    unzip -q "${WORK}/${name}" "${dir}/k6" -d "${WORK}"
  else
    tar -xzf "${WORK}/${name}" -C "${WORK}" "${dir}/k6"
  fi
  mv "${WORK}/${dir}/k6" "${WORK}/k6"
}

install_tool() {
  local tool="$1" want have_version
  want="$(pinned_version "${tool}")"
  have_version="$(tool_version "${tool}")"
  if [[ -n "${have_version}" && "${have_version}" == "${want}" ]]; then
    STEP_RESULT="${want} present ($(command -v "${tool}")), skipped"
    return 0
  fi
  WORK="$(mktemp -d "${TMPDIR:-/tmp}/rollouts-tools.XXXXXX")"
  add_cleanup rm -rf "${WORK}"
  "fetch_${tool}"
  chmod +x "${WORK}/${tool}"
  mv -f "${WORK}/${tool}" "${LOCALBIN}/${tool}"
  rm -rf "${WORK}"
  local now
  now="$(tool_version "${tool}")"
  [[ "${now}" == "${want}" ]] ||
    die "${LOCALBIN}/${tool} reports version '${now}', expected ${want}"
  if [[ -n "${have_version}" ]]; then
    STEP_RESULT="installed ${want} into ${LOCALBIN} (was ${have_version} on PATH)"
  else
    STEP_RESULT="installed ${want} into ${LOCALBIN}"
  fi
}

main() {
  (($# > 0)) || set -- "${ALL_TOOLS[@]}"
  local tools=("$@") t k known
  for t in "${tools[@]}"; do
    known=0
    for k in "${ALL_TOOLS[@]}"; do [[ "${t}" != "${k}" ]] || known=1; done
    ((known == 1)) || die_usage "unknown tool '${t}' (known: ${ALL_TOOLS[*]})"
  done
  OS="$(os_name)"
  ARCH="$(cpu_arch)"
  case "${OS}" in linux | darwin) ;; *) die "unsupported OS '${OS}': tools.sh installs for linux and darwin" ;; esac
  case "${ARCH}" in amd64 | arm64) ;; *) die "unsupported CPU architecture '${ARCH}': amd64 and arm64 only" ;; esac
  require_tools curl tar
  mkdir -p "${LOCALBIN}"
  local start=${SECONDS}
  for t in "${tools[@]}"; do
    step "${t} $(pinned_version "${t}") (${OS}/${ARCH})" install_tool "${t}"
  done
  log "tools ready in ${LOCALBIN} ($((SECONDS - start))s); the Makefile puts it first on PATH"
}

main "$@"
