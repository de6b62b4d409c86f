package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// useModuleCRDs points the oracle at the Gateway API CRDs of the module go.mod requires (build.sh copies the
// same files beside the binary). Called by TestMain.
func useModuleCRDs() {
	if os.Getenv("ISTIO_ORACLE_CRDS") == "" {
		out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "sigs.k8s.io/gateway-api").Output()
		if err == nil {
			os.Setenv("ISTIO_ORACLE_CRDS", filepath.Join(strings.TrimSpace(string(out)), "config", "crd", "standard"))
		}
	}
}

// The API server's defaults reach Istio: a match without path is PathPrefix "/" (Istio dereferences it).
func TestGatewayAPIDefaultsApplied(t *testing.T) {
	s := mustSucceed(t, workload+managedGatewayYAML+`
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: webapp, namespace: rollouts}
spec:
  parentRefs: [{name: gw}]
  rules:
    - matches: [{headers: [{name: x-canary, value: always}]}]
      backendRefs: [{name: webapp, port: 80}]
`, Request{Authority: "localhost", Path: "/"})
	if len(s.Routes) != 1 || !strings.Contains(string(s.Routes[0]), `"name":"http.80"`) {
		t.Fatalf("routes: %s", s.Routes)
	}
	r := s.Requests[0]
	if r.Error != nil || deref(r.Route) != "rollouts.webapp.0" {
		t.Fatalf("request: %+v", r)
	}
}

// The CRDs' schema and CEL rules refuse what the API server refuses.
func TestGatewayAPISchemaRefusal(t *testing.T) {
	in := Input{ID: []byte(`"bad"`), Config: workload + managedGatewayYAML + `
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: webapp, namespace: rollouts}
spec:
  parentRefs: [{name: gw}]
  rules:
    - matches: [{path: {type: PathPrefix, value: "no-slash"}}]
      backendRefs: [{name: webapp, port: 80, weight: -1}]
`}
	f, ok := runCase(in).(Failure)
	if !ok {
		t.Fatalf("accepted")
	}
	all := strings.Join(f.Errors, "\n")
	if !strings.Contains(all, "the API server refuses it") || !strings.Contains(all, "weight") {
		t.Fatalf("errors: %s", all)
	}
}

// A Gateway of class istio without address is deployed by Istio: the oracle simulates the proxy of the
// Deployment Istio creates (<name>-istio in the Gateway's namespace), listening on the listener's port.
func TestGatewayAPIManagedDeployment(t *testing.T) {
	s := mustSucceed(t, workload+managedGatewayYAML+`
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: webapp, namespace: rollouts}
spec:
  parentRefs: [{name: gw}]
  rules:
    - backendRefs: [{name: webapp, port: 80}]
`, Request{Authority: "localhost:8080", Path: "/"})
	notes := strings.Join(s.Notes, "\n")
	if !strings.Contains(notes, "added Service rollouts/gw-istio") || strings.Contains(notes, "istio-ingressgateway") {
		t.Fatalf("notes: %s", notes)
	}
	r := s.Requests[0]
	if r.Error != nil || r.Listener == nil || *r.Listener != "0.0.0.0_80" || deref(r.Route) != "rollouts.webapp.0" {
		t.Fatalf("request: %+v", r)
	}
}

const managedGatewayYAML = `
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw, namespace: rollouts}
spec:
  gatewayClassName: istio
  listeners: [{name: http, port: 80, protocol: HTTP}]
`
