#!/usr/bin/env bash
# Prepares the JSON schemas kubeconform validates Gateway API objects with, offline, from the pinned release
# (GATEWAY_API_VERSION in versions.env): the standard-channel CRDs come from the sigs.k8s.io/gateway-api module
# on the Go module proxy (`go mod download`; its zip holds config/crd/standard/*.yaml), and each CRD version's
# openAPIV3Schema becomes <dir>/<group>/<kind>_<version>.json (kubeconform's -schema-location template
# "<dir>/{{ .Group }}/{{ .ResourceKind }}_{{ .ResourceAPIVersion }}.json"), closed as kubeconform -strict expects
# (additionalProperties: false where the CRD lists the properties; x-kubernetes-int-or-string as string or
# integer). CEL rules (x-kubernetes-validations) are not JSON schema; the Istio oracle applies them.
#
# Cached in .cache/tools/gateway-api-schemas/<GATEWAY_API_VERSION>/ (a hit costs nothing); prints that directory.
# Usage: hack/gateway-api-schemas.sh
set -o errexit -o nounset -o pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=../versions.env
source "${REPO_ROOT}/versions.env"

log() { printf '>>> %s\n' "$*" >&2; }
die() {
  printf 'error: %s\n' "$*" >&2
  exit 1
}

main() {
  local dir="${REPO_ROOT}/.cache/tools/gateway-api-schemas/${GATEWAY_API_VERSION}"
  if [[ -f "${dir}/.complete" ]]; then
    printf '%s\n' "${dir}"
    return 0
  fi
  command -v go >/dev/null || die "go is required to fetch the Gateway API CRDs from the Go module proxy (install Go 1.26+)"
  # Python with PyYAML: the system one, else the checkov virtualenv hack/ci-tools.sh installs.
  local python=python3
  if ! "${python}" -c 'import yaml' 2>/dev/null; then
    python="$(find "${REPO_ROOT}/.cache/tools/venv" -maxdepth 3 -path '*/bin/python' 2>/dev/null | head -n1)"
    if [[ -z "${python}" ]] || ! "${python}" -c 'import yaml' 2>/dev/null; then
      die "python3 with PyYAML is required to convert the Gateway API CRDs (hack/ci-tools.sh python installs one)"
    fi
  fi
  log "fetching sigs.k8s.io/gateway-api ${GATEWAY_API_VERSION} from the Go module proxy"
  local module
  # -json prints the module's directory in the module cache (downloaded and checksum-verified if missing).
  module="$(cd "${REPO_ROOT}" && GOFLAGS=-mod=mod GO111MODULE=on go mod download -json "sigs.k8s.io/gateway-api@${GATEWAY_API_VERSION}" |
    "${python}" -c 'import json, sys; d = json.load(sys.stdin); print(d.get("Dir") or sys.exit(d.get("Error", "no Dir")))')" ||
    die "cannot download sigs.k8s.io/gateway-api@${GATEWAY_API_VERSION}"
  local crds="${module}/config/crd/standard"
  [[ -d "${crds}" ]] || die "sigs.k8s.io/gateway-api@${GATEWAY_API_VERSION} has no config/crd/standard"
  local tmp
  mkdir -p "$(dirname "${dir}")"
  tmp="$(mktemp -d "${dir}.XXXXXX")"
  "${python}" - "${crds}" "${tmp}" "${GATEWAY_API_VERSION}" <<'PY'
import json, os, sys

import yaml

src, dst, version = sys.argv[1:4]

def close(node):
    """kubeconform -strict: no property the CRD does not list (unless it preserves unknown fields)."""
    if isinstance(node, dict):
        if node.pop("x-kubernetes-int-or-string", False):
            node.pop("type", None)
            node["oneOf"] = [{"type": "string"}, {"type": "integer"}]
        if (
            "properties" in node
            and "additionalProperties" not in node
            and not node.get("x-kubernetes-preserve-unknown-fields")
        ):
            node["additionalProperties"] = False
        for value in node.values():
            close(value)
    elif isinstance(node, list):
        for value in node:
            close(value)

count = 0
for name in sorted(os.listdir(src)):
    if not name.endswith(".yaml"):
        continue
    with open(os.path.join(src, name), encoding="utf-8") as f:
        for doc in yaml.safe_load_all(f):
            if not doc or doc.get("kind") != "CustomResourceDefinition":
                continue
            group = doc["spec"]["group"]
            kind = doc["spec"]["names"]["kind"].lower()
            for ver in doc["spec"]["versions"]:
                schema = ver.get("schema", {}).get("openAPIV3Schema")
                if schema is None:
                    continue
                close(schema)
                # metadata is Kubernetes' ObjectMeta: kubeconform checks it loosely.
                schema.setdefault("properties", {})["metadata"] = {"type": "object"}
                schema["description"] = f"{doc['metadata']['name']} {ver['name']} (Gateway API {version}, standard channel)"
                os.makedirs(os.path.join(dst, group), exist_ok=True)
                with open(os.path.join(dst, group, f"{kind}_{ver['name']}.json"), "w", encoding="utf-8") as out:
                    json.dump(schema, out)
                count += 1
if count == 0:
    sys.exit(f"no CRD schemas in {src}")
print(f"{count} schemas", file=sys.stderr)
PY
  printf '%s\n' "${GATEWAY_API_VERSION}" >"${tmp}/.complete"
  rm -rf "${dir}"
  mv "${tmp}" "${dir}"
  log "Gateway API ${GATEWAY_API_VERSION} schemas in ${dir#"${REPO_ROOT}/"}"
  printf '%s\n' "${dir}"
}

main "$@"
