#!/usr/bin/env bash
# `make doctor`: can this machine run the cluster path? Prints one line per check and a summary; exits 1 when a
# blocker is found (warnings alone exit 0).
#
# Thresholds (Docker's CPUs and memory, as `docker info` reports them):
#   blocker  < 2 CPUs or < 4 GiB: kind's node, istiod, the gateway and four sidecar'd pods do not fit;
#   warning  < 4 CPUs or < 8 GiB: Istio's own guidance for a local Docker Desktop install (8 GB, 4 CPUs);
#            below it `make up` is slow and pods can be evicted under k6 load.
# Docker's cgroup version: v1 is a blocker when the pinned node image is Kubernetes 1.35 or later (kind runs those
# on cgroup v2 only, kind v0.31.0 release notes). The buildx plugin: missing is a warning (images are then built
# by the legacy builder, which works, without BuildKit's cache).
# Tools: missing is a blocker (with how to get it); a version other than the pin is a warning, except istioctl,
# whose version is the Istio that `istioctl install` installs (a blocker), and a helm of another major version
# (the scripts use Helm 4's flags: a blocker). The gateway port (GATEWAY_PORT, kind maps it) must be free unless our
# cluster holds it. CPU architecture: amd64 or arm64.
#
# Knobs: GATEWAY_PORT (the host port kind maps to the gateway), CLUSTER_NAME (defaults:
# defaults.env).
set -o errexit -o nounset -o pipefail

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

MIN_CPUS=2
MIN_MEM_GIB=4
WANT_CPUS=4
WANT_MEM_GIB=8

OKS=0
WARNINGS=0
BLOCKERS=0
ok() {
  OKS=$((OKS + 1))
  printf '  ok     %s\n' "$*"
}
warning() {
  WARNINGS=$((WARNINGS + 1))
  printf '  WARN   %s\n' "$*"
}
blocker() {
  BLOCKERS=$((BLOCKERS + 1))
  printf '  FAIL   %s\n' "$*"
}

check_platform() {
  local os arch
  os="$(os_name)"
  arch="$(cpu_arch)"
  case "${os}" in
    linux | darwin) ok "OS ${os}" ;;
    *) warning "OS ${os}: untested (Linux, macOS and WSL2 are); expect surprises" ;;
  esac
  case "${arch}" in
    amd64 | arm64) ok "CPU architecture ${arch}" ;;
    *) blocker "CPU architecture ${arch}: kind node images and Istio ship for amd64 and arm64 only" ;;
  esac
}

check_docker() {
  if ! have docker; then
    blocker "docker not found: $(tool_hint docker)"
    return 0
  fi
  local info
  if ! info="$(docker info --format '{{.NCPU}} {{.MemTotal}} {{.ServerVersion}}' 2>/dev/null)"; then
    blocker "docker daemon does not answer ('docker info' fails): $(tool_hint docker)"
    return 0
  fi
  local cpus mem server
  read -r cpus mem server <<<"${info}"
  ok "docker ${server:-?} reachable"
  check_cgroup
  if ! [[ "${cpus}" =~ ^[0-9]+$ && "${mem}" =~ ^[0-9]+$ ]]; then
    warning "docker reports CPUs '${cpus}' and memory '${mem}': cannot check them"
    return 0
  fi
  local gib=$((mem / 1073741824)) mem_text
  mem_text="$(awk -v m="${mem}" 'BEGIN { printf "%.1f", m / 1073741824 }')"
  if ((cpus < MIN_CPUS)); then
    blocker "docker has ${cpus} CPU(s): kind + Istio need at least ${MIN_CPUS} (${WANT_CPUS} recommended)"
  elif ((cpus < WANT_CPUS)); then
    warning "docker has ${cpus} CPUs: ${WANT_CPUS} recommended (Docker Desktop: Settings > Resources)"
  else
    ok "docker CPUs: ${cpus}"
  fi
  if ((gib < MIN_MEM_GIB)); then
    blocker "docker has ${mem_text} GiB of memory: kind + Istio need at least ${MIN_MEM_GIB} GiB (${WANT_MEM_GIB} recommended)"
  elif ((gib < WANT_MEM_GIB)); then
    warning "docker has ${mem_text} GiB of memory: ${WANT_MEM_GIB} GiB recommended (Docker Desktop: Settings > Resources)"
  else
    ok "docker memory: ${mem_text} GiB"
  fi
}

check_cgroup() {
  local v
  v="$(docker_cgroup_version)"
  case "${v}" in
    2) ok "docker cgroup v2" ;;
    1)
      if node_needs_cgroup_v2; then
        blocker "docker runs on cgroup v1: the kind node image for Kubernetes ${KUBE_VERSION} needs cgroup v2 ('kind create cluster' would fail). $(cgroup_v2_hint)"
      else
        warning "docker runs on cgroup v1: kind deprecates it (node images for Kubernetes 1.35 and later need cgroup v2)"
      fi
      ;;
    *) warning "docker reports cgroup version '${v}': cannot check it (the node image for Kubernetes ${KUBE_VERSION} needs cgroup v2)" ;;
  esac
}

# buildx is a CLI plugin: checked even when the daemon does not answer.
check_buildx() {
  have docker || return 0
  local v
  if v="$(docker buildx version 2>/dev/null)"; then
    v="$(printf '%s\n' "${v}" | grep -Eo 'v?[0-9]+\.[0-9]+\.[0-9]+' | head -n 1 || true)"
    ok "docker buildx ${v:-present}: images are built with BuildKit"
  else
    warning "docker buildx not found: images are built with Docker's legacy builder (works, slower and without BuildKit's cache); to add it: Docker's docker-buildx-plugin package, or 'brew install docker-buildx' and the cliPluginsExtraDirs line its caveats print"
  fi
}

check_tool() {
  local tool="$1" want have_version where
  want="$(pinned_version "${tool}")"
  if ! have "${tool}"; then
    blocker "${tool} not found: $(tool_hint "${tool}")"
    return 0
  fi
  where="$(command -v "${tool}")"
  have_version="$(tool_version "${tool}")"
  if [[ "${have_version}" == "${want}" ]]; then
    ok "${tool} ${have_version} (${where})"
  elif [[ "${tool}" == istioctl ]]; then
    blocker "istioctl ${have_version:-?} (${where}) would install Istio ${have_version:-?}, pinned ${want}: run 'make tools'"
  elif [[ "${tool}" == helm && "$(major_of "${have_version}")" != "$(major_of "${want}")" ]]; then
    blocker "helm ${have_version:-?} (${where}) is not Helm $(major_of "${want}") (the scripts use its flags), pinned ${want}: run 'make tools'"
  else
    warning "${tool} ${have_version:-?} (${where}), pinned ${want}: 'make tools' installs the pin into ./bin"
  fi
}

check_other_tools() {
  local t
  for t in curl node; do
    if have "${t}"; then ok "${t} present"; else blocker "${t} not found: $(tool_hint "${t}")"; fi
  done
}

check_port() {
  if ! is_port "${GATEWAY_PORT}"; then
    blocker "GATEWAY_PORT='${GATEWAY_PORT}' is not a port: expected an integer from 1 to 65535"
  elif have kind && have docker && kind get clusters 2>/dev/null | grep -qxF "${CLUSTER_NAME}"; then
    ok "port ${GATEWAY_PORT}: cluster ${CLUSTER_NAME} exists and holds it"
  elif port_in_use "${GATEWAY_PORT}"; then
    blocker "port ${GATEWAY_PORT} is in use (kind maps it to the gateway): stop what listens there (the local path? 'make local-down')"
  else
    ok "port ${GATEWAY_PORT} free"
  fi
}

# kind's known issue on Linux: too few inotify instances make pods fail with "too many open files".
check_inotify() {
  [[ "$(os_name)" == linux ]] || return 0
  local f=/proc/sys/fs/inotify/max_user_instances
  [[ -r "${f}" ]] || return 0
  local n
  n="$(cat "${f}")"
  if ((n < 512)); then
    warning "fs.inotify.max_user_instances=${n}: kind recommends 512 (sudo sysctl fs.inotify.max_user_instances=512)"
  else
    ok "fs.inotify.max_user_instances=${n}"
  fi
}

main() {
  (($# == 0)) || die_usage "usage: scripts/doctor.sh"
  printf 'doctor: can this machine run the cluster path? (pins: versions.env)\n'
  check_platform
  check_docker
  check_buildx
  local t
  for t in kind kubectl helm istioctl k6; do
    check_tool "${t}"
  done
  check_other_tools
  check_port
  check_inotify
  printf '\ndoctor: %s ok, %s warnings, %s blockers\n' "${OKS}" "${WARNINGS}" "${BLOCKERS}"
  if ((BLOCKERS > 0)); then
    printf 'fix the FAIL lines above, or use the local path (no Docker): make demo\n'
    exit 1
  fi
}

main "$@"
