#!/usr/bin/env bash
# `make up`: kind cluster + Istio + Prometheus + both app images + the chart + the base mesh config + stage `stable`.
# Idempotent: a second run creates nothing that exists (and says "exists, skipped"), keeps the applied stage, and
# loads (and restarts pods for) only an image whose content the kind node does not have yet.
#
# The images built and loaded are the chart's enabled versions (charts/webapp/values.yaml `versions:`, read by
# loadWorkloads of packages/stages, the reader `rollout lint` uses): webapp:<tag> with APP_VERSION=<version key>,
# on the Node of versions.env (NODE24_VERSION). With the buildx plugin by BuildKit (`docker buildx build --load`,
# without the default provenance attestation), else by Docker's legacy builder (DOCKER_BUILDKIT=0 docker build).
#
# Knobs: CLUSTER_NAME, KUBE_CONTEXT, GATEWAY_URL, GATEWAY_PORT (kind maps it to the gateway: must be free before the
# cluster is created), API (defaults: defaults.env), GIT_SHA (git rev-parse),
# UP_TIMEOUT seconds for each bounded wait (300), SCENARIO (a demo release fault on v2 through the chart values:
# bad-v2, slow-v2; empty: healthy; scripts/scenario.sh). Pins: versions.env.
#
# API=gateway-api: the stages are HTTPRoutes (istio/stages/gateway-api/). Then the Gateway API CRDs are installed
# first (the GATEWAY_API_VERSION release's standard-install.yaml, the release Istio 1.31 requires), Istio without its
# classic ingress gateway (both would want node port 30080), and istio/base/gateway-api/ instead of
# istio/base/gateway.yaml: Istio deploys the Gateway webapp-gateway itself (Deployment webapp-gateway-istio in
# namespace rollouts) on node port 30080, which kind maps to host port 8080 as before.
#
# Prometheus is Istio's addon (samples/addons/prometheus.yaml of the ISTIO_VERSION release, the one `make
# dashboards` uses): the canary analysis of `make progress` reads istio_requests_total and
# istio_request_duration_milliseconds from it.
set -o errexit -o nounset -o pipefail

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

KIND_CONFIG="scripts/kind-config.yaml"
ISTIO_OPERATOR="scripts/istio-operator.yaml"
NAMESPACE_MANIFEST="scripts/namespace.yaml"
DOCKERFILE="apps/webapp/Dockerfile"
PROMETHEUS_ADDON="https://raw.githubusercontent.com/istio/istio/${ISTIO_VERSION}/samples/addons/prometheus.yaml"
GATEWAY_API_CRDS="https://github.com/kubernetes-sigs/gateway-api/releases/download/${GATEWAY_API_VERSION}/standard-install.yaml"
# istioctl flags: with API=gateway-api, no classic ingress gateway.
ISTIO_FLAGS=()
# "version tag" per enabled version of the chart, set by preflight (read_chart_versions).
VERSIONS=()
APPLIED=""
# buildx | legacy: how the images are built (set by preflight).
BUILDER=""

# chart_versions: one "version tag" line per enabled entry of the chart's `versions:` (values.yaml), through the
# stages package's loadWorkloads, so enabled/versionDefaults are read exactly as `rollout lint` reads them.
chart_versions() {
  # shellcheck disable=SC2016 # JavaScript, not shell
  node_module packages/stages/dist/index.js "it reads the chart's versions" '
    const [dist, root] = process.argv.slice(1);
    const { loadWorkloads } = await import(dist);
    try {
      for (const w of loadWorkloads(root)) console.log(`${w.version} ${w.tag ?? ""}`);
    } catch (error) {
      console.error(`error: ${error.message}`);
      process.exit(1);
    }
  ' "${REPO_ROOT}"
}

read_chart_versions() {
  local lines line version tag
  lines="$(chart_versions)" || die "cannot read the versions of ${CHART}/values.yaml"
  VERSIONS=()
  while read -r version tag; do
    [[ -n "${version}" ]] || continue
    [[ -n "${tag}" ]] || die "${CHART}/values.yaml: versions.${version} has no tag"
    VERSIONS+=("${version} ${tag}")
  done <<<"${lines}"
  ((${#VERSIONS[@]} > 0)) || die "${CHART}/values.yaml enables no version under versions:"
  for line in "${VERSIONS[@]}"; do
    IMAGES="${IMAGES:+${IMAGES}, }webapp:${line#* }"
  done
}
IMAGES=""

# --set-string KEY=VALUE pairs of the scenario's fault knobs (none: every knob off), from the scenarios' one
# definition (scripts/scenario.sh --print); an unknown SCENARIO exits 2 before anything is created.
SCENARIO_SETS=()
read_scenario_values() {
  local values line rc=0
  values="$("${SCRIPTS_DIR}/scenario.sh" --print "${SCENARIO:-}")" || rc=$?
  ((rc == 0)) || exit "${rc}"
  while IFS= read -r line; do
    [[ -z "${line}" ]] || SCENARIO_SETS+=(--set-string "${line}")
  done <<<"${values}"
}

# Everything is checked before anything is created.
preflight() {
  require_tools docker kind kubectl helm istioctl curl
  require_docker
  require_istioctl_pin
  require_helm_major
  local f
  for f in "${KIND_CONFIG}" "${ISTIO_OPERATOR}" "${NAMESPACE_MANIFEST}" "${DOCKERFILE}" "${CHART}/Chart.yaml" \
    "${CHART}/values.yaml" istio/base; do
    [[ -e "${f}" ]] || die "${f} is missing from the repository"
  done
  [[ -n "${NODE24_VERSION:-}" ]] || die "versions.env sets no NODE24_VERSION (the image's Node)"
  # The stage step needs the CLI; fail now rather than after the cluster exists. The probes send a Host the
  # VirtualService lists (GATEWAY_URL may name the gateway otherwise).
  require_api
  if [[ "${API}" == gateway-api ]]; then
    ISTIO_FLAGS=(--set 'components.ingressGateways[0].enabled=false')
  fi
  use_gateway_host_of stable
  read_chart_versions
  read_scenario_values
  # kind binds GATEWAY_PORT when it creates the cluster, and its node image needs cgroup v2: either would fail only
  # then, half-way.
  if ! cluster_exists; then
    require_gateway_port_free
    require_cgroup_v2
  fi
  if docker_has_buildx; then BUILDER=buildx; else BUILDER=legacy; fi
  STEP_RESULT="docker, kind, kubectl, helm, istioctl ${ISTIO_VERSION}, curl; images ${IMAGES} (${BUILDER} builder)"
}

cluster_exists() { kind get clusters 2>/dev/null | grep -qxF "${CLUSTER_NAME}"; }

# kind_config: scripts/kind-config.yaml with GATEWAY_PORT filled in (kind maps that host port to the gateway).
kind_config() {
  # shellcheck disable=SC2016 # the placeholder as written in the file, not an expansion
  local text placeholder='${GATEWAY_PORT}'
  text="$(<"${KIND_CONFIG}")"
  printf '%s\n' "${text//"${placeholder}"/${GATEWAY_PORT}}"
}

ensure_cluster() {
  if cluster_exists; then
    STEP_RESULT="exists, skipped"
    # The cluster is there but its context may have been removed from the kubeconfig.
    if ! kubectl config get-contexts -o name 2>/dev/null | grep -qxF "${KUBE_CONTEXT}"; then
      kind export kubeconfig --name "${CLUSTER_NAME}"
      STEP_RESULT="exists, skipped (kube context ${KUBE_CONTEXT} restored)"
    fi
  else
    log "${KIND_CONFIG} with hostPort ${GATEWAY_PORT} (GATEWAY_PORT):"
    kind_config | show kind create cluster --name "${CLUSTER_NAME}" --image "${KIND_NODE_IMAGE}" --config - --wait 120s
    STEP_RESULT="created (${KIND_NODE_IMAGE%%@*})"
  fi
}

dump_istio() {
  kube -n "${ISTIO_NAMESPACE}" get pods -o wide || true
  kube -n "${ISTIO_NAMESPACE}" get events --sort-by=.lastTimestamp 2>/dev/null | tail -n 20 || true
}

# rollout_status NAMESPACE KIND/NAME: bounded wait for a Deployment or DaemonSet, state dumped on timeout.
rollout_status() {
  local ns="$1" what="$2"
  if ! kube -n "${ns}" rollout status "${what}" --timeout="${UP_TIMEOUT}s"; then
    log "error: ${what} in ${ns} is not ready after ${UP_TIMEOUT}s"
    kube -n "${ns}" get pods -o wide >&2 || true
    kube -n "${ns}" get events --sort-by=.lastTimestamp 2>/dev/null | tail -n 20 >&2 || true
    exit 1
  fi
}

installed_istio_image() {
  kube -n "${ISTIO_NAMESPACE}" get deployment istiod --ignore-not-found \
    -o 'jsonpath={.spec.template.spec.containers[0].image}'
}

ensure_istio() {
  local image gateway want_gateway=1
  [[ "${API}" != gateway-api ]] || want_gateway=0
  image="$(installed_istio_image)"
  gateway="$(kube -n "${ISTIO_NAMESPACE}" get deployment istio-ingressgateway --ignore-not-found -o name)"
  case "${image}" in
    *":${ISTIO_VERSION}" | *":${ISTIO_VERSION}-"*)
      local has_gateway=0
      [[ -z "${gateway}" ]] || has_gateway=1
      if ((has_gateway == want_gateway)); then
        STEP_RESULT="${ISTIO_VERSION} installed, skipped"
      elif ((want_gateway)); then
        show istioctl --context "${KUBE_CONTEXT}" install -y -f "${ISTIO_OPERATOR}"
        STEP_RESULT="${ISTIO_VERSION} present, ingress gateway added"
      else
        show istioctl --context "${KUBE_CONTEXT}" install -y -f "${ISTIO_OPERATOR}" ${ISTIO_FLAGS[@]+"${ISTIO_FLAGS[@]}"}
        STEP_RESULT="${ISTIO_VERSION} present, classic ingress gateway removed (API=gateway-api)"
      fi
      ;;
    "")
      show istioctl --context "${KUBE_CONTEXT}" install -y -f "${ISTIO_OPERATOR}" ${ISTIO_FLAGS[@]+"${ISTIO_FLAGS[@]}"}
      STEP_RESULT="installed ${ISTIO_VERSION}"
      ;;
    *)
      log "    installed: ${image}; pinned: ${ISTIO_VERSION}"
      show istioctl --context "${KUBE_CONTEXT}" install -y -f "${ISTIO_OPERATOR}" ${ISTIO_FLAGS[@]+"${ISTIO_FLAGS[@]}"}
      STEP_RESULT="upgraded to ${ISTIO_VERSION} (was ${image##*:})"
      ;;
  esac
  rollout_status "${ISTIO_NAMESPACE}" deployment/istiod
  ((want_gateway == 0)) || rollout_status "${ISTIO_NAMESPACE}" deployment/istio-ingressgateway
  rollout_status "${ISTIO_NAMESPACE}" daemonset/istio-cni-node
}

# API=gateway-api: the Gateway API CRDs at GATEWAY_API_VERSION (server-side, as their release notes advise).
ensure_gateway_api_crds() {
  local out
  out="$(retry 3 kube apply --server-side -f "${GATEWAY_API_CRDS}")" || die "cannot apply ${GATEWAY_API_CRDS}"
  log "${out}"
  STEP_RESULT="Gateway API ${GATEWAY_API_VERSION} CRDs applied"
}

# Istio's Prometheus addon at the pinned release; applying it again changes nothing (kubectl says unchanged).
ensure_prometheus() {
  local out
  # Retried: a download or the API server may need a moment.
  out="$(retry 3 kube apply -f "${PROMETHEUS_ADDON}")" || die "cannot apply ${PROMETHEUS_ADDON}"
  log "${out}"
  rollout_status "${ISTIO_NAMESPACE}" deployment/prometheus
  case "${out}" in
    *created*) STEP_RESULT="installed (Istio ${ISTIO_VERSION} addon)" ;;
    *configured*) STEP_RESULT="updated to the Istio ${ISTIO_VERSION} addon" ;;
    *) STEP_RESULT="exists, unchanged" ;;
  esac
}

ensure_namespace() {
  local out
  out="$(kube apply -f "${NAMESPACE_MANIFEST}")"
  log "    ${out}"
  case "${out}" in
    *unchanged*) STEP_RESULT="exists, skipped" ;;
    *created*) STEP_RESULT="created" ;;
    *) STEP_RESULT="updated" ;;
  esac
}

image_id() { docker image inspect -f '{{.Id}}' "$1" 2>/dev/null || true; }

# build_image IMAGE VERSION SHA METADATA_FILE: one version of the app. BuildKit writes the build's metadata
# (containerimage.config.digest among it) to METADATA_FILE; the legacy builder writes none.
build_image() {
  local image="$1" v="$2" sha="$3" metadata="$4"
  local args=(-f "${DOCKERFILE}" --build-arg "NODE_VERSION=${NODE24_VERSION}" --build-arg "APP_VERSION=${v}"
    --build-arg "GIT_SHA=${sha}" -t "${image}")
  if [[ "${BUILDER}" == buildx ]]; then
    # --load: into Docker's image store whatever driver the selected builder has. --provenance=false: the default
    # attestation carries build timestamps, so on the containerd image store every rebuild of unchanged sources
    # would get a new digest (and kind cannot import some attestation manifests).
    docker buildx build "${args[@]}" --load --provenance=false --metadata-file "${metadata}" .
  else
    # DOCKER_BUILDKIT=1 in the environment would make the CLI refuse to build without buildx.
    DOCKER_BUILDKIT=0 docker build "${args[@]}" .
  fi
}

# metadata_config_digest FILE: containerimage.config.digest of a BuildKit metadata file (empty when absent).
metadata_config_digest() {
  [[ -s "$1" ]] || return 0
  grep -Eo '"containerimage\.config\.digest"[[:space:]]*:[[:space:]]*"sha256:[0-9a-f]+"' "$1" |
    grep -Eo 'sha256:[0-9a-f]+' | head -n 1 || true
}

# node_image_digests NODE IMAGE: the digests the node's containerd knows IMAGE by, one a line: the image id of CRI
# (the config digest; Docker's .Id with the classic image store) and the digest of the manifest or index it was
# imported as (Docker's .Id with the containerd image store).
node_image_digests() {
  local node="$1" ref="docker.io/library/$2"
  docker exec "${node}" crictl inspecti -o go-template --template '{{.status.id}}' "${ref}" 2>/dev/null || true
  echo
  docker exec "${node}" ctr --namespace k8s.io images ls "name==${ref}" 2>/dev/null | awk 'NR > 1 { print $3 }' || true
}

# image_on_nodes IMAGE DIGEST...: every node of the cluster has IMAGE with one of the DIGESTs (empty ones ignored).
image_on_nodes() {
  local image="$1" nodes node have d found
  shift
  nodes="$(kind get nodes --name "${CLUSTER_NAME}" 2>/dev/null)" || return 1
  [[ -n "${nodes}" ]] || return 1
  for node in ${nodes}; do
    have="$(node_image_digests "${node}" "${image}")"
    found=0
    for d in "$@"; do
      if [[ -n "${d}" ]] && printf '%s\n' "${have}" | grep -qxF -- "${d}"; then
        found=1
        break
      fi
    done
    ((found == 1)) || return 1
  done
}

# Builds every enabled version of the chart from the repo root (the build cache makes a rebuild of unchanged
# sources cheap) and loads into the kind node only an image the node does not have: compared by content (the
# config digest, or the manifest digest Docker reports), not by the build's own digest, which may carry build
# timestamps. Pods of a loaded image are restarted (install_chart).
CHANGED_IMAGES=0
build_and_load_images() {
  local sha="${GIT_SHA:-}" line v image id config work results=()
  if [[ -z "${sha}" ]]; then
    sha="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
  fi
  work="$(mktemp -d "${TMPDIR:-/tmp}/rollouts-images.XXXXXX")"
  add_cleanup rm -rf "${work}"
  for line in "${VERSIONS[@]}"; do
    v="${line%% *}"
    image="webapp:${line#* }"
    build_image "${image}" "${v}" "${sha}" "${work}/${v}.json"
    id="$(image_id "${image}")"
    [[ -n "${id}" ]] || die "the build left no image ${image} in Docker ('docker image inspect ${image}' fails)"
    config="$(metadata_config_digest "${work}/${v}.json")"
    if image_on_nodes "${image}" "${config}" "${id}"; then
      results+=("${image} unchanged")
    else
      kind load docker-image --name "${CLUSTER_NAME}" "${image}"
      results+=("${image} loaded")
      CHANGED_IMAGES=1
    fi
  done
  rm -rf "${work}"
  STEP_RESULT="${results[*]} (${sha}, ${BUILDER} builder)"
}

install_chart() {
  local verb=installed

  if helm_kube status "${RELEASE}" -n "${NAMESPACE}" >/dev/null 2>&1; then
    verb="exists, upgraded in place"
  fi
  # Helm 4 applies server-side. --force-conflicts: the chart wins over another field manager's change of one of
  # its fields (a `kubectl scale`, a `kubectl edit`) as it did with Helm 3's client-side apply, instead of failing
  # on the conflict. --server-side=true, not Helm's "auto": --force-conflicts needs server-side apply, and "auto"
  # keeps a release installed by Helm 3 on client-side apply. --wait=watcher: until every resource is ready (without
  # --wait, Helm 4 waits for hooks only).
  if ! helm_kube upgrade --install "${RELEASE}" "${CHART}" -n "${NAMESPACE}" --server-side=true --force-conflicts \
    --wait=watcher --timeout 5m ${SCENARIO_SETS[@]+"${SCENARIO_SETS[@]}"}; then
    log "error: the chart did not become ready"
    kube -n "${NAMESPACE}" get pods -o wide >&2 || true
    kube -n "${NAMESPACE}" get events --sort-by=.lastTimestamp 2>/dev/null | tail -n 20 >&2 || true
    exit 1
  fi
  if ((CHANGED_IMAGES == 1)) && [[ "${verb}" != installed ]]; then
    # Same tags, new content: the running pods still have the old image.
    kube -n "${NAMESPACE}" rollout restart deployment -l app=webapp
    local d
    for d in $(kube -n "${NAMESPACE}" get deployment -l app=webapp -o name); do
      rollout_status "${NAMESPACE}" "${d}"
    done
    verb="${verb}, pods restarted on the new images"
  fi
  STEP_RESULT="${verb}${SCENARIO:+, scenario ${SCENARIO}}"
}

apply_base() {
  if [[ "${API}" != gateway-api ]]; then
    show kubectl --context "${KUBE_CONTEXT}" apply -f istio/base
    return
  fi
  # The Gateway API's Gateway replaces Istio's: every base file but gateway.yaml, then istio/base/gateway-api/.
  local f
  for f in istio/base/*.yaml; do
    [[ "${f}" == istio/base/gateway.yaml ]] || show kubectl --context "${KUBE_CONTEXT}" apply -f "${f}"
  done
  show kubectl --context "${KUBE_CONTEXT}" apply -f istio/base/gateway-api
  wait_until "Gateway webapp-gateway to be Programmed (Istio deploys webapp-gateway-istio)" "${UP_TIMEOUT}" "" \
    kube -n "${NAMESPACE}" wait --for=condition=Programmed gateways.gateway.networking.k8s.io/webapp-gateway \
    --timeout=10s
  rollout_status "${NAMESPACE}" deployment/webapp-gateway-istio
  STEP_RESULT="istio/base (without gateway.yaml) and istio/base/gateway-api"
}

# A stage already applied is kept (make rollback / make <stage> change it); a new cluster starts at `stable`.
ensure_stage() {
  APPLIED="$(applied_stage)"
  if [[ -n "${APPLIED}" ]]; then
    STEP_RESULT="stage ${APPLIED} applied, kept"
  else
    SKIP_VERIFY=1 "${SCRIPTS_DIR}/stage.sh" stable
    APPLIED=stable
    STEP_RESULT="stable applied"
  fi
}

LAST_SMOKE=""
# smoke_is VERSION [CURL_ARGS...]: the gateway answers with x-app-version VERSION.
smoke_is() {
  local want="$1"
  shift
  LAST_SMOKE="$(response_header x-app-version ${@+"$@"})"
  [[ "${LAST_SMOKE}" == "${want}" ]]
}

dump_smoke() {
  log "last x-app-version: '${LAST_SMOKE}'"
  gateway_curl -sS -o /dev/null -D - --max-time 5 || true
  kube -n "${NAMESPACE}" get pods -o wide || true
}

smoke() {
  if [[ "${APPLIED}" != stable ]]; then
    STEP_RESULT="skipped (stage ${APPLIED} applied; 'make verify' measures it)"
    return 0
  fi
  wait_until "${GATEWAY_URL}/ to answer x-app-version: v1" "${UP_TIMEOUT}" dump_smoke smoke_is v1
  wait_until "${GATEWAY_URL}/ with x-canary: always to answer v2" "${UP_TIMEOUT}" dump_smoke smoke_is v2 -H 'x-canary: always'
  STEP_RESULT="default -> v1, x-canary: always -> v2"
}

main() {
  local start=${SECONDS}
  step "preflight: tools and repository" preflight
  step "kind cluster ${CLUSTER_NAME}" ensure_cluster
  [[ "${API}" != gateway-api ]] || step "Gateway API CRDs ${GATEWAY_API_VERSION}" ensure_gateway_api_crds
  local istio_note="" base_note=""
  if [[ "${API}" == gateway-api ]]; then
    istio_note=", no classic ingress gateway"
    base_note=" with istio/base/gateway-api"
  fi
  step "Istio ${ISTIO_VERSION} (${ISTIO_OPERATOR}${istio_note})" ensure_istio
  step "Prometheus (${PROMETHEUS_ADDON})" ensure_prometheus
  step "namespace ${NAMESPACE} (${NAMESPACE_MANIFEST})" ensure_namespace
  step "images ${IMAGES} into kind" build_and_load_images
  step "chart ${CHART} (release ${RELEASE})" install_chart
  step "mesh base config (istio/base${base_note})" apply_base
  step "stage" ensure_stage
  step "smoke through ${GATEWAY_URL}" smoke
  log ""
  log "cluster ${CLUSTER_NAME} ready in $((SECONDS - start))s; gateway ${GATEWAY_URL}; stage ${APPLIED}."
  log "next: make canary-10 (… canary-100), make green / blue-preview / blue, make rollback, make status, make down"
}

main "$@"
