#!/usr/bin/env bash
# Installs the tools the offline test suite needs, at the versions pinned in versions.env:
#   Go module proxy : helm, helm-unittest, kubeconform, istioctl  (go install module/cmd@version), and the Istio
#                     oracle (tooling/istio-oracle/build.sh: our program on Istio's control-plane code)
#   PyPI            : checkov, kubernetes-validate (offline Kubernetes JSON schemas for kubeconform)
#   npm registry    : a Node 24 binary (the image's runtime) to run the suite on it too
#   Debian          : shellcheck, bats, chromium (the live page's browser tests drive it with playwright-core),
#                     prometheus (the three-way check: PromQL against a real Prometheus scraping the local path)
# Builds are cached in .cache/tools/<tool>/<version>/ (git-ignored) and linked into ./bin; a cache miss just builds.
# Usage: hack/ci-tools.sh [tool ...]   (no argument: all of them)
set -o errexit -o nounset -o pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=versions.env
source "${REPO_ROOT}/versions.env"

CACHE="${REPO_ROOT}/.cache/tools"
LOCALBIN="${REPO_ROOT}/bin"
mkdir -p "${CACHE}" "${LOCALBIN}"

log() { printf '>>> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# go_tool NAME MODULE/CMD VERSION LDFLAGS [env...]: build once per version (and link flags), link bin/NAME to it.
# The link flags stamp the release version into helm and istioctl, as their release builds do, so
# `helm version` / `istioctl version` report the pin and `make doctor` / `make up` accept these binaries.
go_tool() {
  local name="$1" pkg="$2" version="$3" ldflags="$4"
  shift 4
  local dir="${CACHE}/${name}/${version}"
  if [[ ! -x "${dir}/${name}" || "$(cat "${dir}/.ldflags" 2>/dev/null)" != "${ldflags}" ]]; then
    command -v go >/dev/null || die "go is required to build ${name} (install Go 1.26+)"
    log "building ${name} ${version} from the Go module proxy"
    local start=${SECONDS}
    rm -rf "${dir}.tmp" && mkdir -p "${dir}.tmp"
    env "$@" GOBIN="${dir}.tmp" CGO_ENABLED=0 go install -trimpath -ldflags "${ldflags}" "${pkg}@${version}"
    printf '%s' "${ldflags}" >"${dir}.tmp/.ldflags"
    rm -rf "${dir}" && mv "${dir}.tmp" "${dir}"
    log "${name} ${version} built in $((SECONDS - start))s"
  fi
  ln -sfn "${dir}/${name}" "${LOCALBIN}/${name}"
}

install_helm() {
  go_tool helm "helm.sh/helm/${HELM_VERSION%%.*}/cmd/helm" "${HELM_VERSION}" \
    "-X helm.sh/helm/${HELM_VERSION%%.*}/internal/version.version=${HELM_VERSION}"
}
# helm-unittest's module is not in the public checksum database; its hash is still pinned by the proxy download.
install_helm_unittest() {
  go_tool helm-unittest github.com/helm-unittest/helm-unittest/cmd/helm-unittest "${HELM_UNITTEST_VERSION}" "" \
    GONOSUMDB=github.com/helm-unittest
}
install_kubeconform() { go_tool kubeconform github.com/yannh/kubeconform/cmd/kubeconform "${KUBECONFORM_VERSION}" ""; }
install_istioctl() {
  local v=istio.io/istio/pkg/version
  go_tool istioctl istio.io/istio/istioctl/cmd/istioctl "${ISTIO_GO_VERSION}" \
    "-X ${v}.buildVersion=${ISTIO_GO_TAG} -X ${v}.buildTag=${ISTIO_GO_TAG} -X ${v}.buildStatus=Clean"
}

install_istio_oracle() { "${REPO_ROOT}/tooling/istio-oracle/build.sh"; }

# One virtualenv per (checkov, kubernetes-validate) pair.
install_python_tools() {
  local venv="${CACHE}/venv/checkov-${CHECKOV_VERSION}-kv-${KUBERNETES_VALIDATE_VERSION}"
  if [[ ! -x "${venv}/bin/checkov" ]]; then
    log "installing checkov ${CHECKOV_VERSION} and kubernetes-validate ${KUBERNETES_VALIDATE_VERSION} from PyPI"
    local start=${SECONDS}
    rm -rf "${venv}"
    python3 -m venv "${venv}"
    "${venv}/bin/pip" install --quiet --disable-pip-version-check \
      "checkov==${CHECKOV_VERSION}" "kubernetes-validate==${KUBERNETES_VALIDATE_VERSION}"
    log "python tools installed in $((SECONDS - start))s"
  fi
  ln -sfn "${venv}/bin/checkov" "${LOCALBIN}/checkov"
  # Directory with the Kubernetes JSON schemas shipped by kubernetes-validate, for kubeconform -schema-location.
  local schemas
  schemas="$("${venv}/bin/python" -c 'import kubernetes_validate, os; print(os.path.join(os.path.dirname(kubernetes_validate.__file__), "kubernetes-json-schema"))')"
  [[ -d "${schemas}" ]] || die "kubernetes-validate ${KUBERNETES_VALIDATE_VERSION} ships no schemas at ${schemas}"
  ln -sfn "${schemas}" "${CACHE}/kubernetes-json-schema"
}

install_node24() {
  local dir="${CACHE}/node/${NODE24_VERSION}"
  if [[ ! -x "${dir}/bin/node" ]]; then
    log "installing Node ${NODE24_VERSION} from the npm registry"
    rm -rf "${dir}" && mkdir -p "${dir}"
    npm install --silent --no-audit --no-fund --prefix "${dir}/pkg" "node@${NODE24_VERSION}"
    mkdir -p "${dir}/bin"
    ln -sfn "$(readlink -f "${dir}/pkg/node_modules/node/bin/node")" "${dir}/bin/node"
  fi
  "${dir}/bin/node" --version >/dev/null || die "the Node ${NODE24_VERSION} binary does not run"
  ln -sfn "${dir}/bin/node" "${LOCALBIN}/node24"
}

install_debian() {
  local missing=()
  command -v shellcheck >/dev/null || missing+=(shellcheck)
  command -v bats >/dev/null || missing+=(bats)
  command -v chromium >/dev/null || missing+=(chromium)
  command -v prometheus >/dev/null || missing+=(prometheus)
  ((${#missing[@]} == 0)) && return 0
  command -v apt-get >/dev/null || die "please install: ${missing[*]} (apt-get not found)"
  log "installing ${missing[*]} from Debian"
  local sudo=()
  ((EUID == 0)) || sudo=(sudo)
  "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

main() {
  local tools=("$@")
  ((${#tools[@]})) || tools=(debian node24 python helm helm-unittest kubeconform istioctl istio-oracle)
  local start=${SECONDS} t
  for t in "${tools[@]}"; do
    case "${t}" in
      debian) install_debian ;;
      node24) install_node24 ;;
      python) install_python_tools ;;
      helm) install_helm ;;
      helm-unittest) install_helm_unittest ;;
      kubeconform) install_kubeconform ;;
      istioctl) install_istioctl ;;
      istio-oracle) install_istio_oracle ;;
      *) die "unknown tool '${t}' (known: debian node24 python helm helm-unittest kubeconform istioctl istio-oracle)" ;;
    esac
  done
  log "tools ready in $((SECONDS - start))s"
}

main "$@"
