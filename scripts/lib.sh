# shellcheck shell=bash
# Helpers shared by the cluster-path scripts (sourced, never run). Written for bash 3.2 too (macOS /bin/bash):
# no associative arrays, no ${var,,}, no mapfile, and no "${array[@]}" of a possibly empty array under nounset.
#
# Knobs: TARGET, API, CLUSTER_NAME, KUBE_CONTEXT, GATEWAY_PORT and GATEWAY_URL, with their defaults in defaults.env
# (shared with make and the rollout CLI); the environment overrides each. Those of the scripts alone:
#   LOCALBIN       where `make tools` puts the pinned tools       ./bin (first on PATH)
#   ROLLOUT        the rollout CLI command line                   node packages/cli/dist/main.js
#   WAIT_INTERVAL  seconds between two polls of a bounded wait    2
#   STATE_DIR      where results are written (verify/k6-*.json)    ./.state
# Tool pins come from versions.env only.

# Variables set here are used by the scripts that source this file.
# shellcheck disable=SC2034
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SCRIPTS_DIR="${REPO_ROOT}/scripts"
# shellcheck source=versions.env
source "${REPO_ROOT}/versions.env"

# The shared knobs' defaults: a knob the environment leaves unset or empty takes defaults.env's value, in which
# ${KEY} is the value of a key above it (as packages/stages/src/defaults.ts reads the file for the CLI).
load_defaults() {
  local file="${REPO_ROOT}/defaults.env" line key value rest ref n=0 above=" "
  [[ -f "${file}" ]] || {
    printf 'error: %s is missing: it holds the defaults of TARGET, API, CLUSTER_NAME, ... (git checkout defaults.env)\n' "${file}" >&2
    exit 1
  }
  while IFS= read -r line || [[ -n "${line}" ]]; do
    n=$((n + 1))
    [[ "${line}" =~ ^[[:space:]]*(#|$) ]] && continue
    [[ "${line}" =~ ^([A-Z_][A-Z0-9_]*)=(.*)$ ]] || {
      printf 'error: %s line %d: expected KEY=value, got: %s\n' "${file}" "${n}" "${line}" >&2
      exit 1
    }
    key="${BASH_REMATCH[1]}" rest="${BASH_REMATCH[2]}" value=""
    above+="${key} "
    [[ -z "${!key:-}" ]] || continue
    while [[ "${rest}" =~ ^([^$]*)\$\{([A-Z_][A-Z0-9_]*)\}(.*)$ ]]; do
      ref="${BASH_REMATCH[2]}"
      [[ "${above}" == *" ${ref} "* && "${ref}" != "${key}" ]] || {
        printf 'error: %s line %d: %s is not a key above %s\n' "${file}" "${n}" "\${${ref}}" "${key}" >&2
        exit 1
      }
      value+="${BASH_REMATCH[1]}${!ref:-}"
      rest="${BASH_REMATCH[3]}"
    done
    printf -v "${key}" '%s' "${value}${rest}"
  done <"${file}"
}
load_defaults
GATEWAY_URL="${GATEWAY_URL%/}"
LOCALBIN="${LOCALBIN:-${REPO_ROOT}/bin}"
WAIT_INTERVAL="${WAIT_INTERVAL:-2}"
# Fixed names (docs/ARCHITECTURE.md): the chart, installed as release webapp in namespace rollouts.
NAMESPACE=rollouts
ISTIO_NAMESPACE=istio-system
CHART=charts/webapp
RELEASE=webapp
# Seconds each bounded wait of `make up` and a scenario's helm upgrade may take.
UP_TIMEOUT="${UP_TIMEOUT:-300}"
STATE_DIR="${STATE_DIR:-${REPO_ROOT}/.state}"

PATH="${LOCALBIN}:${PATH}"
export PATH
cd "${REPO_ROOT}" || exit 1

# ---------------------------------------------------------------------------------------------------------------
# Logging: ">>> step" before each step, "<<< step: result (Ns)" after it.

CURRENT_STEP=""
STEP_START=0
STEP_RESULT=""

log() { printf '%s\n' "$*" >&2; }
warn() { printf 'warning: %s\n' "$*" >&2; }
die() {
  printf 'error: %s\n' "$*" >&2
  exit 1
}
# Bad input (unknown stage, wrong usage): exit 2, like the rollout CLI.
die_usage() {
  printf 'error: %s\n' "$*" >&2
  exit 2
}

# show COMMAND [ARGS...]: prints the command as the user would type it ("+ kubectl ... apply -f ..."), then runs it.
# The rollout CLI is shown as `rollout`.
show() {
  local shown
  shown="$(printf '%q ' "$@")"
  log "+ ${shown% }"
  if [[ "$1" == rollout ]]; then
    shift
    rollout "$@"
  else
    "$@"
  fi
}

# step DESCRIPTION COMMAND [ARGS...]: runs the command; it may set STEP_RESULT ("created", "exists, skipped").
step() {
  local desc="$1"
  shift
  CURRENT_STEP="${desc}"
  STEP_START=${SECONDS}
  STEP_RESULT="done"
  log ">>> ${desc}"
  "$@"
  log "<<< ${desc}: ${STEP_RESULT} ($((SECONDS - STEP_START))s)"
  CURRENT_STEP=""
}

# ---------------------------------------------------------------------------------------------------------------
# Cleanup on exit (temp files, port-forwards), and a result line for the step that failed.

CLEANUP_COMMANDS=()

# add_cleanup COMMAND [ARGS...]: run at exit, last added first.
add_cleanup() {
  local quoted
  quoted="$(printf '%q ' "$@")"
  CLEANUP_COMMANDS=("${quoted}" ${CLEANUP_COMMANDS[@]+"${CLEANUP_COMMANDS[@]}"})
}

on_exit() {
  local rc=$?
  local c
  for c in ${CLEANUP_COMMANDS[@]+"${CLEANUP_COMMANDS[@]}"}; do
    eval "${c}" >/dev/null 2>&1 || true
  done
  if ((rc != 0)) && [[ -n "${CURRENT_STEP}" ]]; then
    log "<<< ${CURRENT_STEP}: FAILED (exit ${rc}, $((SECONDS - STEP_START))s)"
  fi
  exit "${rc}"
}
trap on_exit EXIT

# ---------------------------------------------------------------------------------------------------------------
# Platform and tools.

# os_name: linux | darwin | the raw `uname -s` lower-cased.
os_name() {
  case "$(uname -s)" in
    Linux) echo linux ;;
    Darwin) echo darwin ;;
    *) uname -s | tr '[:upper:]' '[:lower:]' ;;
  esac
}

# cpu_arch: amd64 | arm64 | the raw `uname -m`.
cpu_arch() {
  local m
  m="$(uname -m)"
  case "${m}" in
    x86_64 | amd64) echo amd64 ;;
    aarch64 | arm64 | armv8*) echo arm64 ;;
    *) echo "${m}" ;;
  esac
}

# tool_hint TOOL: how to get it.
tool_hint() {
  local os
  os="$(os_name)"
  case "$1" in
    kind | kubectl | helm | istioctl | k6) echo "run 'make tools' (installs the pinned $1 into ./bin)" ;;
    docker)
      if [[ "${os}" == darwin ]]; then
        echo "install Docker Desktop, Colima or OrbStack, start it, then check with 'docker info'"
      else
        echo "install Docker Engine (https://docs.docker.com/engine/install/) and start it: sudo systemctl start docker"
      fi
      ;;
    curl | git) if [[ "${os}" == darwin ]]; then echo "brew install $1"; else echo "install it with your package manager (e.g. apt-get install $1)"; fi ;;
    node) echo "install Node.js 20 or newer (https://nodejs.org), then 'make build'" ;;
    *) echo "install $1" ;;
  esac
}

have() { command -v "$1" >/dev/null 2>&1; }

# require_tools TOOL...: every missing tool is named with how to get it, then exit 1 (before anything is done).
require_tools() {
  local t missing=0
  for t in "$@"; do
    if ! have "${t}"; then
      printf 'error: %s not found: %s\n' "${t}" "$(tool_hint "${t}")" >&2
      missing=1
    fi
  done
  ((missing == 0)) || exit 1
}

# require_docker: the docker CLI is there and its daemon answers.
require_docker() {
  require_tools docker
  docker info >/dev/null 2>&1 || die "docker is installed but its daemon does not answer ('docker info' fails): $(tool_hint docker)"
}

# tool_version TOOL: the first x.y.z its version command prints (without a leading v), or nothing.
tool_version() {
  local out=""
  case "$1" in
    kind) out="$(kind version 2>/dev/null)" || true ;;
    kubectl) out="$(kubectl version --client 2>/dev/null)" || true ;;
    helm) out="$(helm version --template '{{.Version}}' 2>/dev/null)" || true ;;
    istioctl) out="$(istioctl version --remote=false 2>/dev/null)" || true ;;
    k6) out="$(k6 version 2>/dev/null)" || true ;;
    *) out="$("$1" --version 2>/dev/null)" || true ;;
  esac
  printf '%s\n' "${out}" | grep -Eo '[0-9]+\.[0-9]+\.[0-9]+' | head -n 1 || true
}

# pinned_version TOOL: the pin from versions.env, without a leading v.
pinned_version() {
  local v=""
  case "$1" in
    kind) v="${KIND_VERSION}" ;;
    kubectl) v="${KUBECTL_VERSION}" ;;
    helm) v="${HELM_VERSION}" ;;
    istioctl) v="${ISTIO_VERSION}" ;;
    k6) v="${K6_VERSION}" ;;
  esac
  printf '%s\n' "${v#v}"
}

# major_of VERSION: the major version of x.y.z (a leading v is dropped).
major_of() {
  local v="${1#v}"
  printf '%s\n' "${v%%.*}"
}

# require_helm_major: the helm calls use Helm 4's flags (`--wait=watcher`, `--server-side`, `--force-conflicts`),
# which Helm 3 rejects, so helm must be of the pinned major version (another minor or patch only warns in doctor).
require_helm_major() {
  local have_version want
  have_version="$(tool_version helm)"
  want="$(major_of "${HELM_VERSION}")"
  [[ -n "${have_version}" && "$(major_of "${have_version}")" == "${want}" ]] ||
    die "helm ${have_version:-of unknown version} ($(command -v helm)) is not Helm ${want}: the scripts use Helm ${want}'s flags and versions.env pins HELM_VERSION=${HELM_VERSION}: run 'make tools'"
}

# require_istioctl_pin: `istioctl install` installs istioctl's own version, so it must be the pinned one.
require_istioctl_pin() {
  local have_version
  have_version="$(tool_version istioctl)"
  [[ "${have_version}" == "${ISTIO_VERSION}" ]] ||
    die "istioctl ${have_version:-of unknown version} ($(command -v istioctl)) would install Istio ${have_version:-?}, but versions.env pins ISTIO_VERSION=${ISTIO_VERSION}: run 'make tools'"
}

# docker_has_buildx: the buildx plugin answers. With it images are built by BuildKit (`docker buildx build`);
# without it (Colima with Homebrew's docker CLI, distribution packages without the plugin) by the legacy builder.
docker_has_buildx() { docker buildx version >/dev/null 2>&1; }

# docker_cgroup_version: the cgroup version of the Docker host (1 or 2; empty when docker does not say).
docker_cgroup_version() { docker info --format '{{.CgroupVersion}}' 2>/dev/null || true; }

# node_needs_cgroup_v2: the pinned node image (KIND_NODE_IMAGE, Kubernetes KUBE_VERSION) is Kubernetes 1.35 or
# later, which kind runs on cgroup v2 hosts only (kind v0.31.0 release notes).
node_needs_cgroup_v2() {
  local major minor rest
  IFS=. read -r major minor rest <<<"${KUBE_VERSION}"
  [[ "${major}" =~ ^[0-9]+$ && "${minor}" =~ ^[0-9]+$ ]] || return 0
  ((major > 1 || (major == 1 && minor >= 35)))
}

# cgroup_v2_hint: how to move a Docker host to cgroup v2.
cgroup_v2_hint() {
  echo "Linux: a distribution release that boots with cgroup v2 (most since 2021), or add systemd.unified_cgroup_hierarchy=1 to the kernel command line and reboot; WSL2: kernelCommandLine = cgroup_no_v1=all under [wsl2] in .wslconfig, then 'wsl --shutdown'; Docker Desktop, Colima, OrbStack: update them (their current VMs use cgroup v2). 'docker info --format {{.CgroupVersion}}' must print 2"
}

# require_cgroup_v2: the Docker host runs cgroup v2 when the node image needs it ('kind create cluster' would
# fail late otherwise).
require_cgroup_v2() {
  node_needs_cgroup_v2 || return 0
  [[ "$(docker_cgroup_version)" != 1 ]] ||
    die "docker runs on cgroup v1, but the kind node image for Kubernetes ${KUBE_VERSION} needs cgroup v2 ('kind create cluster' would fail). $(cgroup_v2_hint)"
}

# port_in_use PORT: something listens on 127.0.0.1:PORT.
port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# is_port VALUE: VALUE is a TCP port number, 1 to 65535.
is_port() { [[ "$1" =~ ^[0-9]{1,5}$ ]] && ((10#$1 >= 1 && 10#$1 <= 65535)); }

# require_gateway_port: GATEWAY_PORT is a port number kind can map (bad input: exit 2).
require_gateway_port() {
  # shellcheck disable=SC2153 # GATEWAY_PORT is set by load_defaults (defaults.env), not a misspelling
  is_port "${GATEWAY_PORT}" ||
    die_usage "GATEWAY_PORT='${GATEWAY_PORT}' is not a port: expected an integer from 1 to 65535"
}

# require_gateway_port_free: GATEWAY_PORT is free (kind maps it to the gateway; `kind create cluster` would fail late).
require_gateway_port_free() {
  require_gateway_port
  if port_in_use "${GATEWAY_PORT}"; then
    die "port ${GATEWAY_PORT} is in use (kind maps it to the gateway): stop what listens there (the local path? 'make local-down'), or see 'make doctor'"
  fi
}

# ---------------------------------------------------------------------------------------------------------------
# Bounded waits.

# wait_until DESCRIPTION TIMEOUT_SECONDS DUMP_FUNCTION COMMAND [ARGS...]
# Runs COMMAND every WAIT_INTERVAL seconds until it succeeds; after TIMEOUT_SECONDS, prints what it waited for,
# calls DUMP_FUNCTION (useful state: pods, events, last answer; "" for none) and exits 1.
wait_until() {
  local desc="$1" timeout="$2" dump="$3"
  shift 3
  local deadline=$((SECONDS + timeout)) attempts=0
  while :; do
    attempts=$((attempts + 1))
    if "$@"; then
      return 0
    fi
    ((SECONDS < deadline)) || break
    sleep "${WAIT_INTERVAL}"
  done
  log "error: timed out after ${timeout}s (${attempts} attempts) waiting for ${desc}"
  if [[ -n "${dump}" ]]; then
    log "--- state at timeout ---"
    "${dump}" >&2 || true
    log "------------------------"
  fi
  exit 1
}

# retry ATTEMPTS COMMAND [ARGS...]: up to ATTEMPTS tries, WAIT_INTERVAL apart; returns the last status.
retry() {
  local attempts="$1" i=1 rc=0
  shift
  while :; do
    rc=0
    "$@" && return 0 || rc=$?
    ((i < attempts)) || return "${rc}"
    log "    attempt ${i}/${attempts} failed (exit ${rc}), retrying in ${WAIT_INTERVAL}s"
    i=$((i + 1))
    sleep "${WAIT_INTERVAL}"
  done
}

# ---------------------------------------------------------------------------------------------------------------
# The cluster: every call names the kind context, so a stage never lands on another cluster of the kubeconfig.

kube() { kubectl --context "${KUBE_CONTEXT}" "$@"; }
helm_kube() { helm --kube-context "${KUBE_CONTEXT}" "$@"; }
istio_kube() { istioctl --context "${KUBE_CONTEXT}" "$@"; }

# require_cluster: the kind context exists and its API server answers; else a clear message and exit 1.
require_cluster() {
  require_tools kubectl
  if ! kubectl config get-contexts -o name 2>/dev/null | grep -qxF "${KUBE_CONTEXT}"; then
    die "no cluster: kube context '${KUBE_CONTEXT}' not found. Create it with 'make up' (CLUSTER_NAME=${CLUSTER_NAME})"
  fi
  local err
  if ! err="$(kube get --raw /readyz 2>&1 >/dev/null)"; then
    die "cluster '${KUBE_CONTEXT}' does not answer (${err:-no detail}). Is Docker running? Try 'make doctor', or 'make up'"
  fi
}

# require_api: API is virtualservice or gateway-api.
require_api() {
  case "${API}" in
    virtualservice | gateway-api) ;;
    *) die_usage "API must be 'virtualservice' or 'gateway-api', got '${API}'" ;;
  esac
}

# stage_resource: sets STAGE_RESOURCE, what kubectl reads the applied stage from (the route object of API), as the
# CLI names it; the CLI is asked once (call it in the script's own shell, not in $(...), so the answer is kept).
STAGE_RESOURCE=""
stage_resource() {
  [[ -n "${STAGE_RESOURCE}" ]] || STAGE_RESOURCE="$(rollout field stable resource --api "${API}")"
}

# require_cluster_api: the cluster was set up for API (`make up API=gateway-api` installs the Gateway API CRDs).
require_cluster_api() {
  [[ "${API}" == gateway-api ]] || return 0
  kube get crd httproutes.gateway.networking.k8s.io >/dev/null 2>&1 ||
    die "API=gateway-api, but cluster '${KUBE_CONTEXT}' has no Gateway API CRDs: set it up with 'make up API=gateway-api'"
}

# applied_stage: the label rollouts/stage of the route object of API (empty when none is applied).
applied_stage() {
  local out resource
  stage_resource
  resource="${STAGE_RESOURCE}"
  if ! out="$(kube -n "${NAMESPACE}" get "${resource}" --ignore-not-found \
    -o 'jsonpath={.metadata.labels.rollouts/stage}' 2>&1)"; then
    die "cannot read ${resource} in namespace ${NAMESPACE}: ${out}. Run 'make up${API:+ API=${API}}' first"
  fi
  printf '%s' "${out}"
}

# ---------------------------------------------------------------------------------------------------------------
# The gateway as a user sees it.

# Istio routes by Host: a stage answers only the hosts it lists (the repo's stages answer every Host, "*"), anything
# else gets a 404 from the gateway. GATEWAY_HOST is the Host header the probes (and k6) send when GATEWAY_URL's
# host is not one of them; empty when it is. Set by use_gateway_host_of.
GATEWAY_HOST=""

# url_host URL: the host of URL, lower-cased, without scheme, credentials, port or path ([::1] keeps brackets).
url_host() {
  local rest="${1#*://}"
  rest="${rest%%/*}"
  rest="${rest##*@}"
  case "${rest}" in
    \[*) rest="${rest%%]*}]" ;;
    *) rest="${rest%%:*}" ;;
  esac
  printf '%s\n' "${rest}" | tr '[:upper:]' '[:lower:]'
}

# use_gateway_host_of STAGE (or its manifest's path): sets GATEWAY_HOST for the stage's routes (`rollout field
# STAGE hosts`): empty when GATEWAY_URL's host is one of them, else localhost when listed, else the first host
# that is not a wildcard.
use_gateway_host_of() {
  local stage host h list
  stage="$(basename "$1" .yaml)"
  local -a hosts=()
  while IFS= read -r h; do hosts+=("${h}"); done < <(rollout field "${stage}" hosts --api "${API}")
  ((${#hosts[@]})) || die "stage ${stage} lists no hosts: cannot tell which Host the gateway routes"
  list="${hosts[*]}"
  host="$(url_host "${GATEWAY_URL}")"
  GATEWAY_HOST=""
  for h in "${hosts[@]}"; do
    [[ "${h}" != "${host}" && "${h}" != "*" ]] || return 0
  done
  for h in localhost "${hosts[@]}"; do
    if [[ "${h}" != *"*"* ]] && printf '%s\n' "${hosts[@]}" | grep -qxF -- "${h}"; then
      GATEWAY_HOST="${h}"
      break
    fi
  done
  [[ -n "${GATEWAY_HOST}" ]] ||
    die "GATEWAY_URL ${GATEWAY_URL}: host '${host}' is not one of the stage's hosts (${list}), and none of them can be sent as Host instead"
  log "    GATEWAY_URL's host '${host}' is not one of the stage's hosts (${list}): sending Host: ${GATEWAY_HOST}"
}

# gateway_curl [CURL_ARGS...]: curl of GATEWAY_URL/ with the Host header of GATEWAY_HOST, if any.
gateway_curl() {
  if [[ -n "${GATEWAY_HOST}" ]]; then
    curl -H "Host: ${GATEWAY_HOST}" "$@" "${GATEWAY_URL}/"
  else
    curl "$@" "${GATEWAY_URL}/"
  fi
}

# response_header NAME [CURL_ARGS...]: the value of one response header of GET $GATEWAY_URL/ (empty if absent).
response_header() {
  local name="$1"
  shift
  gateway_curl -sS -o /dev/null -D - --max-time 5 "$@" 2>/dev/null |
    tr -d '\r' |
    awk -v want="${name}" 'BEGIN { want = tolower(want) }
      { i = index($0, ":"); if (i > 0 && tolower(substr($0, 1, i - 1)) == want) { v = substr($0, i + 1); sub(/^[ \t]+/, "", v); print v; exit } }'
}

# ---------------------------------------------------------------------------------------------------------------
# The rollout CLI (packages/cli). ROLLOUT overrides it, as one command line (split on spaces).

ROLLOUT_CMD=()
if [[ -n "${ROLLOUT:-}" ]]; then
  read -r -a ROLLOUT_CMD <<<"${ROLLOUT}"
else
  ROLLOUT_CMD=(node "${REPO_ROOT}/packages/cli/dist/main.js")
fi

# node_module DIST WHAT SCRIPT ARGS...: runs the JavaScript SCRIPT (an ES module) with the built module DIST's URL
# and ARGS as its arguments; a missing node or build is named with what fixes it (WHAT: what DIST is needed for).
node_module() {
  local dist="$1" what="$2" script="$3"
  shift 3
  have node || die "node not found: $(tool_hint node)"
  [[ -f "${REPO_ROOT}/${dist}" ]] || die "${dist} is missing (${what}): run 'make build'"
  node --input-type=module -e "${script}" "file://${REPO_ROOT}/${dist}" "$@"
}

# rollout ARGS...: runs the CLI; a missing build is named with the command that makes it.
rollout() {
  if [[ -z "${ROLLOUT:-}" ]]; then
    have node || die "node not found: $(tool_hint node)"
    [[ -f "${REPO_ROOT}/packages/cli/dist/main.js" ]] ||
      die "the rollout CLI is not built (packages/cli/dist/main.js): run 'make build'"
  fi
  "${ROLLOUT_CMD[@]}" "$@"
}

# require_target: TARGET is cluster or local.
require_target() {
  case "${TARGET}" in
    cluster | local) ;;
    *) die_usage "TARGET must be 'cluster' or 'local', got '${TARGET}'" ;;
  esac
}
