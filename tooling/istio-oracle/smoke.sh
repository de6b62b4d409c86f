#!/usr/bin/env bash
# Smoke run of the Istio oracle on the repository's real files: renders charts/webapp, adds one Pod and one
# EndpointSlice per rendered Deployment (labels from its pod template), concatenates istio/base/*.yaml and the
# given stage file, and asks bin/istio-oracle (built by build.sh) how the ingress gateway routes a few requests.
# Prints the oracle's answer: one JSON line (pipe it through `python3 -m json.tool` to read it).
# Usage: tooling/istio-oracle/smoke.sh [--case] istio/stages/canary-25.yaml
#   --case: print the oracle's input line instead of running it.
set -o errexit -o nounset -o pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "${HERE}/../.." && pwd)"
# shellcheck source=../../versions.env
source "${REPO_ROOT}/versions.env"

die() { printf 'error: %s\n' "$*" >&2; exit 1; }

print_case=false
if [[ "${1:-}" == "--case" ]]; then
  print_case=true
  shift
fi
(($# == 1)) || die "usage: $0 [--case] <stage file, e.g. istio/stages/canary-25.yaml>"
stage="$1"
[[ -f "${stage}" ]] || stage="${REPO_ROOT}/${1}"
[[ -f "${stage}" ]] || die "no stage file ${1}"

# helm: the pinned one in bin/, else built once from the Go module proxy into a temporary directory.
helm="${REPO_ROOT}/bin/helm"
if [[ ! -x "${helm}" ]]; then
  hbin="${TMPDIR:-/tmp}/istio-oracle-helm/${HELM_VERSION}"
  if [[ ! -x "${hbin}/helm" ]]; then
    printf '>>> building helm %s into %s\n' "${HELM_VERSION}" "${hbin}" >&2
    GOBIN="${hbin}" CGO_ENABLED=0 GOTOOLCHAIN=local go install "helm.sh/helm/${HELM_VERSION%%.*}/cmd/helm@${HELM_VERSION}"
  fi
  helm="${hbin}/helm"
fi

# Python with PyYAML: the system one, else the checkov virtualenv hack/ci-tools.sh installs.
python=python3
if ! "${python}" -c 'import yaml' 2>/dev/null; then
  python="$(find "${REPO_ROOT}/.cache/tools/venv" -maxdepth 3 -path '*/bin/python' 2>/dev/null | head -n1)"
  if [[ -z "${python}" ]] || ! "${python}" -c 'import yaml' 2>/dev/null; then
    die "python3 with PyYAML is required"
  fi
fi

${print_case} || "${HERE}/build.sh" >&2

work="$(mktemp -d)"
trap 'rm -rf "${work}"' EXIT
"${helm}" template webapp "${REPO_ROOT}/charts/webapp" --namespace rollouts >"${work}/chart.yaml"

# The base of the stage's API: istio/base/*.yaml for a VirtualService stage; for an HTTPRoute stage
# (istio/stages/gateway-api/) the Gateway API Gateway of istio/base/gateway-api/ instead of the Istio Gateway.
bases=()
for f in "${REPO_ROOT}"/istio/base/*.yaml; do
  [[ "${stage}" == */gateway-api/* && "${f}" == */gateway.yaml ]] || bases+=("${f}")
done
if [[ "${stage}" == */gateway-api/* ]]; then
  bases+=("${REPO_ROOT}"/istio/base/gateway-api/*.yaml)
fi
"${python}" - "${work}/chart.yaml" "${stage}" "${bases[@]}" >"${work}/case.jsonl" <<'PY'
import json, sys, yaml

chart, stage, bases = sys.argv[1], sys.argv[2], sys.argv[3:]
docs = [d for d in yaml.safe_load_all(open(chart)) if d]

def is_hook(d):
    return "helm.sh/hook" in (d.get("metadata", {}).get("annotations") or {})

services = [d for d in docs if d["kind"] == "Service" and not is_hook(d)]
objects = [d for d in docs if d["kind"] in ("Service", "ServiceAccount") and not is_hook(d)]

def selects(selector, labels):
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())

# One running Pod per Deployment (per version), and one EndpointSlice per (Service, Pod) the Service selects.
deployments = [d for d in docs if d["kind"] == "Deployment"]
for i, dep in enumerate(deployments):
    tpl = dep["spec"]["template"]
    labels = tpl["metadata"]["labels"]
    ns = dep["metadata"]["namespace"]
    ip = "10.244.0.%d" % (10 + i)
    name = dep["metadata"]["name"] + "-oracle"
    spec = {k: tpl["spec"][k] for k in ("serviceAccountName", "containers") if k in tpl["spec"]}
    objects.append({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": ns, "labels": labels},
        "spec": spec,
        "status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}],
                   "conditions": [{"type": "Ready", "status": "True"}]},
    })
    container_ports = {p["name"]: p["containerPort"] for c in spec["containers"] for p in c.get("ports", []) if "name" in p}
    for svc in services:
        if svc["metadata"]["namespace"] != ns or not selects(svc["spec"].get("selector"), labels):
            continue
        ports = []
        for p in svc["spec"]["ports"]:
            target = p.get("targetPort", p["port"])
            ports.append({"name": p.get("name", ""), "port": container_ports.get(target, target),
                          "protocol": p.get("protocol", "TCP"), **({"appProtocol": p["appProtocol"]} if "appProtocol" in p else {})})
        objects.append({
            "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": "%s-%s" % (svc["metadata"]["name"], dep["metadata"]["name"]), "namespace": ns,
                         "labels": {"kubernetes.io/service-name": svc["metadata"]["name"]}},
            "addressType": "IPv4",
            "endpoints": [{"addresses": [ip], "conditions": {"ready": True},
                           "targetRef": {"kind": "Pod", "namespace": ns, "name": name}}],
            "ports": ports,
        })

config = "\n---\n".join([open(f).read() for f in bases + [stage]] + [json.dumps(o) for o in objects])
requests = [
    {"authority": "localhost:8080", "method": "GET", "path": "/"},
    {"authority": "127.0.0.1:8080", "method": "GET", "path": "/"},
    {"authority": "127.0.0.1:8080", "method": "GET", "path": "/", "headers": {"x-canary": ["always"]}},
    {"authority": "webapp.rollouts.svc.cluster.local", "method": "GET", "path": "/healthz"},
]
print(json.dumps({"id": stage.rsplit("/", 1)[-1], "config": config, "requests": requests}))
PY

if ${print_case}; then
  cat "${work}/case.jsonl"
else
  "${REPO_ROOT}/bin/istio-oracle" <"${work}/case.jsonl" | tee "${work}/answer.json"
  # A summary on stderr: each gateway route's destinations, and the endpoints (version label) of each cluster.
  "${python}" - "${work}/answer.json" >&2 <<'PY'
import json, sys
o = json.load(open(sys.argv[1]))
if not o["ok"]:
    print("refused:", *o["errors"], sep="\n  ")
    sys.exit(0)
for rc in o["routes"]:
    for vh in rc.get("virtualHosts", []):
        print("%s  virtual host %s  domains %s" % (rc["name"], vh["name"], vh["domains"]))
        for r in vh.get("routes", []):
            a = r.get("route", {})
            dests = [(c["name"], c.get("weight")) for c in a.get("weightedClusters", {}).get("clusters", [])] or [(a.get("cluster"), 100)]
            print("  route %-16s %s" % (r.get("name"), "  ".join("%s=%s" % d for d in dests)))
for name, c in sorted(o["clusters"].items()):
    eps = ["%s:%s (version=%s)" % (e["address"], e["port"], (e["podLabels"] or {}).get("version")) for e in c["endpoints"]]
    print("  cluster %s: %s" % (name, ", ".join(eps) or "no endpoints"))
for i, r in enumerate(o["requests"]):
    print("  request %d -> route %s %s%s" % (i, r["route"], [(c["name"], c["weight"]) for c in r["clusters"]],
                                            "  (simulation ignored: %d conditions)" % len(r["notEvaluated"]) if r["notEvaluated"] else ""))
PY
fi
