#!/usr/bin/env bash
# Proves istio/ with the real tools, offline:
#   validate    `istioctl validate -f` on every file under istio/ (schema and Istio's own validation rules)
#   render      `helm template` of charts/webapp at KUBE_VERSION (the workloads and Service the mesh config targets)
#   analyze     `istioctl analyze --use-kube=false -A` over the rendered chart + the namespace + istio/base + ONE stage
#               file, for each stage in turn (a stage replaces the previous one, so they are never applied together);
#               any message, even Info, is a failure
#   self-check  the same analysis with a stage whose subset does not exist must report IST0101, so a clean
#               analysis above means something (without -A, analyze silently looks at the "default" namespace only)
#   lint        the stages package's lint (weights, subsets, labels, hosts, gateway binding, make targets) against
#               the rendered chart
# and for the Gateway API variant (istio/stages/gateway-api/, istio/base/gateway-api/):
#   kubeconform -strict on every HTTPRoute stage and the Gateway, against the JSON schemas of the pinned Gateway
#               API CRDs (GATEWAY_API_VERSION; hack/gateway-api-schemas.sh, from the Go module proxy), and a
#               self-check: a misspelt field must be refused
#   analyze     the same analysis per HTTPRoute stage, over the chart + namespace + istio/base without the Istio
#               Gateway + istio/base/gateway-api (offline, istioctl checks no HTTPRoute field: see below)
#   pairs       the stages package's lint of the HTTPRoute stages against the rendered chart (labels, stage header,
#               rollback target, backends, and the same split as the stage's VirtualService for every profile)
# (`istioctl validate` above covers istio/stages/gateway-api/ and istio/base/gateway-api/ too.)
# Prints one line per check, writes JUnit to $TEST_RESULTS_DIR/istio.xml, exits 1 if any check failed.
#
# Knobs (env): ISTIOCTL, HELM, KUBECONFORM (default ./bin/<tool>); GATEWAY_API_SCHEMAS (a directory laid out as
# hack/gateway-api-schemas.sh makes it; default: that script's cache); TEST_RESULTS_DIR (default .test-results).
set -o errexit -o nounset -o pipefail

# shellcheck source=hack/harness.sh
source "$(dirname "${BASH_SOURCE[0]}")/harness.sh"

ISTIOCTL="${ISTIOCTL:-${REPO_ROOT}/bin/istioctl}"
HELM="${HELM:-${REPO_ROOT}/bin/helm}"
KUBECONFORM="${KUBECONFORM:-${REPO_ROOT}/bin/kubeconform}"
GATEWAY_API_SCHEMAS="${GATEWAY_API_SCHEMAS:-}"
GA_STAGES="${REPO_ROOT}/istio/stages/gateway-api"
GA_BASE="${REPO_ROOT}/istio/base/gateway-api"
CHART="${REPO_ROOT}/${CHART}"
NAMESPACE_MANIFEST="${REPO_ROOT}/scripts/namespace.yaml"
STAGES_DIST="${REPO_ROOT}/packages/stages/dist/index.js"

junit_init istio

require_tools() {
  local t
  for t in "${ISTIOCTL}" "${HELM}" "${KUBECONFORM}"; do
    [[ -x "${t}" ]] || die "${t} not found: run hack/ci-tools.sh (or make tools) first"
  done
}

# run_check CLASS NAME COMMAND [ARGS...]: runs the command, records ok (exit 0) or FAIL with its output.
run_check() {
  local class="$1" name="$2"
  shift 2
  local out="${WORK}/out.$((JUNIT_PASSED + JUNIT_FAILED))" start=${SECONDS} rc=0
  "$@" >"${out}" 2>&1 || rc=$?
  if ((rc == 0)); then
    junit_record "${class}" "${name}" "$((SECONDS - start))" ok "${out}" ""
  else
    junit_record "${class}" "${name}" "$((SECONDS - start))" fail "${out}" "exit ${rc}"
  fi
}

# A failing testcase without a command (a precondition that does not hold).
record_missing() {
  local class="$1" name="$2" message="$3"
  local out="${WORK}/out.$((JUNIT_PASSED + JUNIT_FAILED))"
  printf '%s\n' "${message}" >"${out}"
  junit_record "${class}" "${name}" 0 fail "${out}" "${message}"
}

validate_files() {
  log "istioctl validate: every file under istio/"
  local f
  while IFS= read -r f; do
    run_check validate "${f#"${REPO_ROOT}/"}" "${ISTIOCTL}" validate -f "${f}"
  done < <(find "${REPO_ROOT}/istio" -type f \( -name '*.yaml' -o -name '*.yml' \) | LC_ALL=C sort)
}

render_chart() {
  log "helm template ${RELEASE} charts/webapp --namespace ${NAMESPACE} --kube-version ${KUBE_VERSION}"
  run_check render "helm template charts/webapp" \
    "${HELM}" template "${RELEASE}" "${CHART}" --namespace "${NAMESPACE}" --kube-version "${KUBE_VERSION}" \
    --output-dir "${WORK}/rendered"
  [[ -d "${WORK}/rendered" ]] || return 1
  # One multi-document file, as `helm template` prints it, for analyze and lint.
  find "${WORK}/rendered" -type f -name '*.yaml' | LC_ALL=C sort | while IFS= read -r f; do
    cat "${f}"
    printf '\n---\n'
  done >"${WORK}/chart.yaml"
}

namespace_manifest() {
  if [[ -f "${NAMESPACE_MANIFEST}" ]]; then
    cp "${NAMESPACE_MANIFEST}" "${WORK}/namespace.yaml"
  else
    printf 'apiVersion: v1\nkind: Namespace\nmetadata:\n  name: %s\n  labels:\n    istio-injection: enabled\n' \
      "${NAMESPACE}" >"${WORK}/namespace.yaml"
  fi
}

# analyze_clean STAGE_FILE: istioctl analyze over chart + namespace + base + the stage; any message fails.
analyze_clean() {
  local stage_file="$1" base=()
  local f
  while IFS= read -r f; do base+=("${f}"); done < <(find "${REPO_ROOT}/istio/base" -maxdepth 1 -type f -name '*.yaml' | LC_ALL=C sort)
  "${ISTIOCTL}" analyze --use-kube=false --all-namespaces --failure-threshold Info --output-threshold Info \
    "${WORK}/chart.yaml" "${WORK}/namespace.yaml" "${base[@]}" "${stage_file}"
}

# analyze_reports CODE STAGE_FILE: the analysis must fail and name CODE.
analyze_reports() {
  local code="$1" stage_file="$2" out rc=0
  out="$(analyze_clean "${stage_file}" 2>&1)" || rc=$?
  printf '%s\n' "${out}"
  if ((rc == 0)); then
    printf 'expected %s, but the analysis found nothing\n' "${code}"
    return 1
  fi
  grep -q "${code}" <<<"${out}" || { printf 'expected %s in the output above\n' "${code}"; return 1; }
}

analyze_stages() {
  log "istioctl analyze: rendered chart + namespace + istio/base + each stage"
  local s
  while IFS= read -r s; do
    run_check analyze "$(basename "${s}" .yaml)" analyze_clean "${s}"
  done < <(find "${REPO_ROOT}/istio/stages" -maxdepth 1 -type f -name '*.yaml' | LC_ALL=C sort)

  local first broken="${WORK}/broken-stage.yaml"
  first="$(find "${REPO_ROOT}/istio/stages" -maxdepth 1 -type f -name '*.yaml' | LC_ALL=C sort | head -n 1)"
  if [[ -z "${first}" ]]; then
    record_missing analyze "stages exist" "no istio/stages/*.yaml to analyze"
    return
  fi
  sed -E 's/subset: [a-z0-9-]+/subset: no-such-subset/' "${first}" >"${broken}"
  run_check self-check "analyze reports IST0101 for an undefined subset" analyze_reports IST0101 "${broken}"
}

# gateway_api_schemas: the schema directory (prepared once per GATEWAY_API_VERSION), or empty on failure.
gateway_api_schemas() {
  if [[ -n "${GATEWAY_API_SCHEMAS}" ]]; then
    printf '%s\n' "${GATEWAY_API_SCHEMAS}"
  else
    "${REPO_ROOT}/hack/gateway-api-schemas.sh"
  fi
}

kubeconform_gateway_api() {
  local schemas="$1"
  shift
  "${KUBECONFORM}" -strict -summary -output text \
    -schema-location "${schemas}/{{ .Group }}/{{ .ResourceKind }}_{{ .ResourceAPIVersion }}.json" "$@"
}

# kubeconform_refuses FILE: kubeconform must refuse the file.
kubeconform_refuses() {
  local schemas="$1" file="$2" rc=0
  kubeconform_gateway_api "${schemas}" "${file}" || rc=$?
  ((rc != 0)) || { printf 'kubeconform accepted %s\n' "${file}"; return 1; }
}

kubeconform_stages() {
  log "kubeconform (Gateway API ${GATEWAY_API_VERSION} CRD schemas): HTTPRoute stages and the Gateway"
  local schemas
  if ! schemas="$(gateway_api_schemas 2>"${WORK}/schemas.err")"; then
    record_missing kubeconform "Gateway API ${GATEWAY_API_VERSION} schemas" "$(cat "${WORK}/schemas.err")"
    return
  fi
  local f files=()
  while IFS= read -r f; do files+=("${f}"); done < <(find "${GA_STAGES}" -maxdepth 1 -type f -name '*.yaml' | LC_ALL=C sort)
  if ((${#files[@]} == 0)); then
    record_missing kubeconform "HTTPRoute stages exist" "no istio/stages/gateway-api/*.yaml"
    return
  fi
  for f in "${files[@]}" "${GA_BASE}/gateway.yaml"; do
    run_check kubeconform "${f#"${REPO_ROOT}/"}" kubeconform_gateway_api "${schemas}" "${f}"
  done
  local broken="${WORK}/misspelt-route.yaml"
  sed -E 's/^( *)weight:/\1weigth:/' "${files[0]}" >"${broken}"
  run_check self-check "kubeconform refuses an HTTPRoute with a misspelt field" kubeconform_refuses "${schemas}" "${broken}"
}

# analyze_route_clean STAGE_FILE: the analysis of an HTTPRoute stage (its base: istio/base without the Istio
# Gateway, plus istio/base/gateway-api); any message fails.
analyze_route_clean() {
  local stage_file="$1" base=() f
  while IFS= read -r f; do
    [[ "$(basename "${f}")" == gateway.yaml ]] || base+=("${f}")
  done < <(find "${REPO_ROOT}/istio/base" -maxdepth 1 -type f -name '*.yaml' | LC_ALL=C sort)
  while IFS= read -r f; do base+=("${f}"); done < <(find "${GA_BASE}" -maxdepth 1 -type f -name '*.yaml' | LC_ALL=C sort)
  "${ISTIOCTL}" analyze --use-kube=false --all-namespaces --failure-threshold Info --output-threshold Info \
    "${WORK}/chart.yaml" "${WORK}/namespace.yaml" "${base[@]}" "${stage_file}"
}

analyze_route_stages() {
  log "istioctl analyze: rendered chart + namespace + istio/base (Gateway API) + each HTTPRoute stage"
  local s first=""
  while IFS= read -r s; do
    [[ -n "${first}" ]] || first="${s}"
    run_check analyze "gateway-api/$(basename "${s}" .yaml)" analyze_route_clean "${s}"
  done < <(find "${GA_STAGES}" -maxdepth 1 -type f -name '*.yaml' | LC_ALL=C sort)
  if [[ -z "${first}" ]]; then
    record_missing analyze "HTTPRoute stages exist" "no istio/stages/gateway-api/*.yaml to analyze"
    return
  fi
  # No self-check here: offline, istioctl has nothing to say about an HTTPRoute. Its only analyzers of Gateway
  # API kinds read the status istiod writes on a cluster (conditions.ConditionAnalyzer), which a file source
  # drops, and `istioctl validate` skips Gateway API objects. This analysis still checks the rest of the
  # Gateway API setup (chart, DestinationRule, policies, the Gateway's namespace). The HTTPRoute files are
  # checked by kubeconform above (the CRDs' schemas) and by the Istio oracle (the CRDs' defaults and CEL rules,
  # then Istio's translation: tooling/istio-diff).
}

# stages_check ID DESCRIPTION SCRIPT: a check that runs the JavaScript SCRIPT (an ES module) with packages/stages'
# built module, the repository and the rendered chart as its arguments; recorded as missing when stages is not built.
stages_check() {
  local id="$1" desc="$2" script="$3"
  if [[ ! -f "${STAGES_DIST}" ]]; then
    record_missing "${id}" "${desc}" \
      "packages/stages is not built (${STAGES_DIST#"${REPO_ROOT}/"} missing): run pnpm build first"
    return
  fi
  run_check "${id}" "${desc}" node --input-type=module -e "${script}" "${STAGES_DIST}" "${REPO_ROOT}" "${WORK}/chart.yaml"
}

# Each HTTPRoute stage loads against the rendered chart (its Services and pods) and gives the split of the
# VirtualService of the same name, for every request profile of either file (packages/stages). The scripts are
# JavaScript in single quotes on purpose: their ${...} are template literals, not shell.
pair_stages() {
  log "HTTPRoute stages against the rendered chart: the same split as their VirtualService"
  # shellcheck disable=SC2016
  stages_check pairs "HTTPRoute stage lint and pairs against the rendered chart" '
    import { readFileSync } from "node:fs";
    const [dist, root, rendered] = process.argv.slice(1);
    const { lintGatewayApi, httpRouteStageNames } = await import(dist);
    const names = httpRouteStageNames(root);
    const findings = lintGatewayApi(root, { renderedChart: readFileSync(rendered, "utf8") });
    for (const f of findings) console.log(`${f.file}: ${f.field}: ${f.message} [${f.rule}]`);
    console.log(`${names.length} HTTPRoute stage(s), ${findings.length} finding(s)`);
    process.exit(names.length > 0 && findings.length === 0 ? 0 : 1);
  '
}

lint_stages() {
  log "stage lint against the rendered chart"
  # shellcheck disable=SC2016
  stages_check lint "stage lint against the rendered chart" '
    import { readFileSync } from "node:fs";
    const [dist, root, rendered] = process.argv.slice(1);
    const { lint } = await import(dist);
    const findings = lint(root, { renderedChart: readFileSync(rendered, "utf8") });
    for (const f of findings) console.log(`${f.file}: ${f.field}: ${f.message} [${f.rule}]`);
    console.log(`${findings.length} finding(s)`);
    process.exit(findings.length === 0 ? 0 : 1);
  '
}

main() {
  require_tools
  WORK="$(mktemp -d)"
  trap cleanup EXIT

  validate_files
  kubeconform_stages
  if [[ ! -f "${CHART}/Chart.yaml" ]]; then
    record_missing analyze "chart present" "charts/webapp is missing: nothing to analyze the mesh config against"
    record_missing lint "chart present" "charts/webapp is missing: nothing to lint the stages against"
  elif render_chart; then
    namespace_manifest
    analyze_stages
    lint_stages
    analyze_route_stages
    pair_stages
  fi

  junit_write "${TEST_RESULTS_DIR}/istio.xml"
  printf '\nistio: %s passed, %s failed (JUnit: %s)\n' "${JUNIT_PASSED}" "${JUNIT_FAILED}" "${TEST_RESULTS_DIR}/istio.xml"
  ((JUNIT_FAILED == 0))
}

main "$@"
