#!/usr/bin/env bash
# Proves charts/webapp with the real tools, offline:
#   lint        helm lint --strict, default values and each charts/webapp/ci/*.yaml
#   template    helm template --kube-version $KUBE_VERSION, same value sets (the renders feed the next two)
#   kubeconform -strict on each render, against the Kubernetes JSON schemas shipped by kubernetes-validate
#   checkov     --framework kubernetes on each render: zero findings (accepted ones are annotated in templates)
#   unittest    helm-unittest suites charts/webapp/tests/*_test.yaml (own JUnit file)
#   schema      each scripts/test/chart-schema-cases/*.yaml must make `helm template` fail with the message
#               written on its first line ("# expect: <text>")
# Prints one line per check, writes JUnit to $TEST_RESULTS_DIR/chart.xml (+ chart-unittest.xml), exits 1 if any
# check failed.
#
# Knobs (env): HELM, HELM_UNITTEST, KUBECONFORM, CHECKOV (default ./bin/<tool>); KUBERNETES_SCHEMAS, a directory
# holding kubernetes-validate's schema folders (v<version>-local-strict/...; default .cache/tools/kubernetes-json-schema,
# the link hack/ci-tools.sh makes); TEST_RESULTS_DIR (default .test-results).
set -o errexit -o nounset -o pipefail

# shellcheck source=hack/harness.sh
source "$(dirname "${BASH_SOURCE[0]}")/harness.sh"

CHART="${REPO_ROOT}/${CHART}"
CASES_DIR="${REPO_ROOT}/scripts/test/chart-schema-cases"
HELM="${HELM:-${REPO_ROOT}/bin/helm}"
HELM_UNITTEST="${HELM_UNITTEST:-${REPO_ROOT}/bin/helm-unittest}"
KUBECONFORM="${KUBECONFORM:-${REPO_ROOT}/bin/kubeconform}"
CHECKOV="${CHECKOV:-${REPO_ROOT}/bin/checkov}"
KUBERNETES_SCHEMAS="${KUBERNETES_SCHEMAS:-${REPO_ROOT}/.cache/tools/kubernetes-json-schema}"
SCHEMA_CACHE="${REPO_ROOT}/.cache/kubeconform-schemas"

junit_init chart

require_tools() {
  local missing=() t
  for t in "${HELM}" "${HELM_UNITTEST}" "${KUBECONFORM}" "${CHECKOV}"; do
    [[ -x "${t}" ]] || missing+=("${t}")
  done
  command -v python3 >/dev/null || missing+=(python3)
  ((${#missing[@]} == 0)) || die "missing tools: ${missing[*]} (run hack/ci-tools.sh, or point HELM/HELM_UNITTEST/KUBECONFORM/CHECKOV at them)"
}

# kubernetes-validate ships the schemas with "$id": "https://kubernetes.io/api/..." and
# "$ref": "/api/_definitions.json#/$defs/...": kubeconform would resolve those refs over the network. This step
# copies one Kubernetes version's strict schemas into .cache/kubeconform-schemas/ with the ids dropped and the refs
# made relative to the file ("_definitions.json#/$defs/..."), once per kubernetes-validate version.
# kubernetes-validate ships one schema set per minor (v1.36.0); a patch release has the same API, so the node's
# version (1.36.4) reads the schemas of its minor, under its own name for kubeconform -kubernetes-version.
prepare_schemas() {
  local dir="v${KUBE_VERSION}-local-strict"
  local src="${KUBERNETES_SCHEMAS}/v${KUBE_VERSION%.*}.0-local-strict" dst="${SCHEMA_CACHE}/${dir}"
  local stamp="kubernetes-validate ${KUBERNETES_VALIDATE_VERSION}"
  if [[ -f "${dst}/.source" && "$(cat "${dst}/.source")" == "${stamp}" ]]; then
    return 0
  fi
  [[ -d "${src}" ]] || die "no Kubernetes ${KUBE_VERSION} schemas at ${src} (kubernetes-validate ${KUBERNETES_VALIDATE_VERSION}, installed by hack/ci-tools.sh python; or set KUBERNETES_SCHEMAS)"
  log "arranging the Kubernetes ${KUBE_VERSION} JSON schemas for kubeconform (offline refs) in ${dst#"${REPO_ROOT}"/}"
  mkdir -p "${SCHEMA_CACHE}"
  local tmp
  tmp="$(mktemp -d "${SCHEMA_CACHE}/.${dir}.XXXXXX")"
  python3 - "${src}" "${tmp}" <<'PY'
import json, os, sys

src, dst = sys.argv[1], sys.argv[2]
PREFIX = "/api/_definitions.json#"

def localise(node):
    if isinstance(node, dict):
        node.pop("$id", None)
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith(PREFIX):
            node["$ref"] = "_definitions.json#" + ref[len(PREFIX):]
        for value in node.values():
            localise(value)
    elif isinstance(node, list):
        for value in node:
            localise(value)

count = 0
for name in sorted(os.listdir(src)):
    if not name.endswith(".json"):
        continue
    with open(os.path.join(src, name), encoding="utf-8") as f:
        doc = json.load(f)
    localise(doc)
    with open(os.path.join(dst, name), "w", encoding="utf-8") as f:
        json.dump(doc, f)
    count += 1
if count == 0 or not os.path.exists(os.path.join(dst, "_definitions.json")):
    sys.exit(f"no schemas (or no _definitions.json) in {src}")
PY
  printf '%s' "${stamp}" >"${tmp}/.source"
  rm -rf "${dst}"
  mv "${tmp}" "${dst}"
}

# The value sets every render-based check runs on: the defaults, then each CI values file.
value_sets() {
  printf 'default\n'
  local f
  for f in "${CHART}"/ci/*.yaml; do
    [[ -e "${f}" ]] && printf 'ci/%s\n' "$(basename "${f}")"
  done
}

values_args() {
  [[ "$1" == default ]] || printf -- '--values\n%s\n' "${CHART}/$1"
}

check_lint() {
  local set="$1" out="${WORK}/lint.out" start=${SECONDS} args
  mapfile -t args < <(values_args "${set}")
  if "${HELM}" lint --strict --kube-version "${KUBE_VERSION}" --namespace "${NAMESPACE}" "${args[@]}" "${CHART}" >"${out}" 2>&1; then
    junit_record lint "${set}" $((SECONDS - start)) ok "${out}" ""
  else
    junit_record lint "${set}" $((SECONDS - start)) fail "${out}" "helm lint --strict failed"
  fi
}

# check_template SET: renders into ${WORK}/render/<n>.yaml; prints the path on success.
check_template() {
  local set="$1" file="$2" out="${WORK}/template.out" start=${SECONDS} args
  mapfile -t args < <(values_args "${set}")
  if "${HELM}" template "${RELEASE}" "${CHART}" --namespace "${NAMESPACE}" --kube-version "${KUBE_VERSION}" \
    "${args[@]}" >"${file}" 2>"${out}"; then
    local kinds
    kinds="$(grep -c '^kind: ' "${file}" || true)"
    junit_record template "${set}" $((SECONDS - start)) ok "${out}" "${kinds} objects"
    return 0
  fi
  junit_record template "${set}" $((SECONDS - start)) fail "${out}" "helm template failed"
  return 1
}

check_kubeconform() {
  local set="$1" file="$2" out="${WORK}/kubeconform.out" start=${SECONDS}
  local location="${SCHEMA_CACHE}/{{.NormalizedKubernetesVersion}}-local{{.StrictSuffix}}/{{.ResourceKind}}{{.KindSuffix}}.json"
  if "${KUBECONFORM}" -strict -summary -kubernetes-version "${KUBE_VERSION}" -schema-location "${location}" \
    "${file}" >"${out}" 2>&1 && grep -q 'Invalid: 0, Errors: 0, Skipped: 0' "${out}"; then
    junit_record kubeconform "${set}" $((SECONDS - start)) ok "${out}" "$(grep -o '[0-9]* resources\? found' "${out}")"
  else
    junit_record kubeconform "${set}" $((SECONDS - start)) fail "${out}" "$(grep -o 'Valid: .*' "${out}" || echo 'kubeconform failed')"
  fi
}

check_checkov() {
  local set="$1" file="$2" out="${WORK}/checkov.out" start=${SECONDS}
  # --skip-download: offline, no policy metadata from the vendor's platform. LOG_LEVEL is the app's knob, and
  # checkov reads the same variable.
  local rc=0
  env -u LOG_LEVEL "${CHECKOV}" --file "${file}" --framework kubernetes --skip-download --compact --quiet \
    --output cli >"${out}" 2>&1 || rc=$?
  local summary
  summary="$(grep -o 'Passed checks: [0-9]*, Failed checks: [0-9]*, Skipped checks: [0-9]*' "${out}" || true)"
  if ((rc == 0)) && [[ "${summary}" =~ Passed\ checks:\ [1-9][0-9]*,\ Failed\ checks:\ 0, ]]; then
    junit_record checkov "${set}" $((SECONDS - start)) ok "${out}" "${summary}"
  else
    junit_record checkov "${set}" $((SECONDS - start)) fail "${out}" "${summary:-checkov exited ${rc} without a summary}"
  fi
}

check_unittest() {
  local out="${WORK}/unittest.out" start=${SECONDS}
  mkdir -p "${TEST_RESULTS_DIR}"
  if "${HELM_UNITTEST}" --strict --color=false -f 'tests/*_test.yaml' -t JUnit \
    -o "${TEST_RESULTS_DIR}/chart-unittest.xml" "${CHART}" >"${out}" 2>&1; then
    junit_record unittest "helm-unittest suites" $((SECONDS - start)) ok "${out}" "$(grep -E '^Tests:' "${out}" | tr -s ' ')"
  else
    junit_record unittest "helm-unittest suites" $((SECONDS - start)) fail "${out}" "$(grep -E '^Tests:' "${out}" | tr -s ' ' || echo 'helm-unittest failed')"
  fi
}

# check_schema_case FILE: the values must be refused, with the expected message.
check_schema_case() {
  local file="$1" name out="${WORK}/case.out" start=${SECONDS} expect
  name="$(basename "${file}" .yaml)"
  expect="$(sed -n '1s/^# expect: //p' "${file}")"
  if [[ -z "${expect}" ]]; then
    printf '%s has no "# expect: <message>" first line\n' "${file}" >"${out}"
    junit_record schema "${name}" 0 fail "${out}" "malformed case file"
    return
  fi
  if "${HELM}" template "${RELEASE}" "${CHART}" --namespace "${NAMESPACE}" --kube-version "${KUBE_VERSION}" \
    --values "${file}" >"${out}" 2>&1; then
    printf 'helm template accepted %s and rendered %s objects\n' "${file#"${REPO_ROOT}"/}" "$(grep -c '^kind: ' "${out}" || true)" >"${out}"
    junit_record schema "${name}" $((SECONDS - start)) fail "${out}" "rendered, expected a failure with: ${expect}"
  elif grep -qF -- "${expect}" "${out}"; then
    junit_record schema "${name}" $((SECONDS - start)) ok "${out}" "refused: ${expect}"
  else
    junit_record schema "${name}" $((SECONDS - start)) fail "${out}" "failed without the expected message: ${expect}"
  fi
}

main() {
  local start=${SECONDS}
  require_tools
  WORK="$(mktemp -d)"
  trap cleanup EXIT
  prepare_schemas

  log "chart ${CHART#"${REPO_ROOT}"/}, Kubernetes ${KUBE_VERSION}, release ${RELEASE} in ${NAMESPACE}"
  local set n=0 file
  mkdir -p "${WORK}/render"
  while IFS= read -r set; do
    log "values: ${set}"
    n=$((n + 1))
    file="${WORK}/render/${n}.yaml"
    check_lint "${set}"
    if check_template "${set}" "${file}"; then
      check_kubeconform "${set}" "${file}"
      check_checkov "${set}" "${file}"
    fi
  done < <(value_sets)

  log "helm-unittest"
  check_unittest

  log "values the chart must refuse (${CASES_DIR#"${REPO_ROOT}"/})"
  local cases=0
  for file in "${CASES_DIR}"/*.yaml; do
    [[ -e "${file}" ]] || continue
    cases=$((cases + 1))
    check_schema_case "${file}"
  done
  if ((cases == 0)); then
    printf 'no case files in %s\n' "${CASES_DIR}" >"${WORK}/case.out"
    junit_record schema "case files present" 0 fail "${WORK}/case.out" "no schema cases found"
  fi

  junit_write "${TEST_RESULTS_DIR}/chart.xml"
  printf '<<< chart: %s passed, %s failed in %ss (JUnit: %s/chart.xml, chart-unittest.xml)\n' \
    "${JUNIT_PASSED}" "${JUNIT_FAILED}" "$((SECONDS - start))" "${TEST_RESULTS_DIR#"${REPO_ROOT}"/}"
  ((JUNIT_FAILED == 0))
}

main "$@"
