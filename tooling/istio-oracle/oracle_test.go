package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"slices"
	"strings"
	"testing"

	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"google.golang.org/protobuf/encoding/protojson"
)

func TestMain(m *testing.M) {
	if err := silenceIstio(); err != nil {
		panic(err)
	}
	useModuleCRDs()
	os.Exit(m.Run())
}

// workload is what the caller renders from charts/webapp: the Service, one Pod and one EndpointSlice per version.
const workload = `
apiVersion: v1
kind: Service
metadata: {name: webapp, namespace: rollouts, labels: {app: webapp}}
spec:
  selector: {app.kubernetes.io/name: webapp}
  ports: [{name: http, port: 80, targetPort: http, protocol: TCP, appProtocol: http}]
---
apiVersion: v1
kind: Pod
metadata: {name: webapp-v1-a, namespace: rollouts, labels: {app.kubernetes.io/name: webapp, app: webapp, version: v1, color: green}}
spec: {containers: [{name: webapp, image: webapp:v1, ports: [{name: http, containerPort: 8080}]}]}
status: {phase: Running, podIP: 10.244.0.11, conditions: [{type: Ready, status: "True"}]}
---
apiVersion: v1
kind: Pod
metadata: {name: webapp-v2-a, namespace: rollouts, labels: {app.kubernetes.io/name: webapp, app: webapp, version: v2, color: blue}}
spec: {containers: [{name: webapp, image: webapp:v2, ports: [{name: http, containerPort: 8080}]}]}
status: {phase: Running, podIP: 10.244.0.12, conditions: [{type: Ready, status: "True"}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: webapp-v1, namespace: rollouts, labels: {kubernetes.io/service-name: webapp}}
addressType: IPv4
endpoints: [{addresses: [10.244.0.11], conditions: {ready: true}, targetRef: {kind: Pod, namespace: rollouts, name: webapp-v1-a}}]
ports: [{name: http, port: 8080, protocol: TCP}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: webapp-v2, namespace: rollouts, labels: {kubernetes.io/service-name: webapp}}
addressType: IPv4
endpoints: [{addresses: [10.244.0.12], conditions: {ready: true}, targetRef: {kind: Pod, namespace: rollouts, name: webapp-v2-a}}]
ports: [{name: http, port: 8080, protocol: TCP}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: webapp, namespace: rollouts}
spec:
  host: webapp.rollouts.svc.cluster.local
  subsets:
    - {name: v1, labels: {version: v1}}
    - {name: v2, labels: {version: v2}}
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: webapp-gateway, namespace: rollouts}
spec:
  selector: {istio: ingressgateway}
  servers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: ["*"]}]
`

const (
	v1Cluster = "outbound|80|v1|webapp.rollouts.svc.cluster.local"
	v2Cluster = "outbound|80|v2|webapp.rollouts.svc.cluster.local"
)

func virtualService(hosts, gateways, http string) string {
	return `
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: webapp, namespace: rollouts}
spec:
  hosts: ` + hosts + `
  gateways: ` + gateways + `
  http:
` + http
}

const splitHTTP = `
    - name: split
      route:
        - {destination: {host: webapp.rollouts.svc.cluster.local, subset: v1}, weight: 75}
        - {destination: {host: webapp.rollouts.svc.cluster.local, subset: v2}, weight: 25}
`

const headerHTTP = `
    - name: canary-override
      match: [{headers: {x-canary: {exact: always}}}]
      route: [{destination: {host: webapp.rollouts.svc.cluster.local, subset: v2}}]
` + splitHTTP

func mustSucceed(t *testing.T, config string, requests ...Request) Success {
	t.Helper()
	out := runCase(Input{ID: json.RawMessage(`"t"`), Config: config, Requests: requests})
	s, ok := out.(Success)
	if !ok {
		t.Fatalf("case failed: %+v", out)
	}
	return s
}

func routeConfig(t *testing.T, s Success, name string) *route.RouteConfiguration {
	t.Helper()
	for _, raw := range s.Routes {
		rc := &route.RouteConfiguration{}
		if err := protojson.Unmarshal(raw, rc); err != nil {
			t.Fatal(err)
		}
		if rc.Name == name {
			return rc
		}
	}
	t.Fatalf("no route configuration %s in %d", name, len(s.Routes))
	return nil
}

func deref(s *string) string {
	if s == nil {
		return "<nil>"
	}
	return *s
}

func TestWeightedSplit(t *testing.T) {
	s := mustSucceed(t, workload+virtualService(`["*"]`, `[rollouts/webapp-gateway]`, splitHTTP),
		Request{Authority: "localhost:8080", Method: "GET", Path: "/"})

	rc := routeConfig(t, s, "http.8080")
	if len(rc.VirtualHosts) != 1 {
		t.Fatalf("virtual hosts: %v", rc.VirtualHosts)
	}
	wc := rc.VirtualHosts[0].Routes[0].GetRoute().GetWeightedClusters().GetClusters()
	if len(wc) != 2 || wc[0].Name != v1Cluster || wc[0].Weight.GetValue() != 75 || wc[1].Name != v2Cluster || wc[1].Weight.GetValue() != 25 {
		t.Fatalf("weighted clusters: %v", wc)
	}

	for cluster, version := range map[string]string{v1Cluster: "v1", v2Cluster: "v2"} {
		eps := s.Clusters[cluster].Endpoints
		if len(eps) != 1 || eps[0].PodLabels["version"] != version || eps[0].Port != 8080 {
			t.Errorf("%s endpoints: %+v", cluster, eps)
		}
	}

	r := s.Requests[0]
	if r.Error != nil || deref(r.Route) != "split" || deref(r.RouteConfig) != "http.8080" {
		t.Fatalf("request: %+v", r)
	}
	want := []ClusterWeight{{v1Cluster, 75}, {v2Cluster, 25}}
	if len(r.Clusters) != 2 || r.Clusters[0] != want[0] || r.Clusters[1] != want[1] {
		t.Fatalf("clusters: %+v", r.Clusters)
	}
	if len(r.NotEvaluated) != 0 {
		t.Errorf("notEvaluated: %v", r.NotEvaluated)
	}
}

func TestHeaderMatch(t *testing.T) {
	s := mustSucceed(t, workload+virtualService(`["*"]`, `[rollouts/webapp-gateway]`, headerHTTP),
		Request{Authority: "localhost:8080", Path: "/", Headers: map[string][]string{"x-canary": {"always"}}},
		Request{Authority: "localhost:8080", Path: "/"})

	routes := routeConfig(t, s, "http.8080").VirtualHosts[0].Routes
	if len(routes) != 2 || routes[0].Name != "canary-override" || routes[1].Name != "split" {
		t.Fatalf("routes: %v", routes)
	}
	h := routes[0].GetMatch().GetHeaders()
	if len(h) != 1 || h[0].Name != "x-canary" || h[0].GetStringMatch().GetExact() != "always" {
		t.Fatalf("header matcher: %v", h)
	}

	with := s.Requests[0]
	if deref(with.Route) != "canary-override" || len(with.Clusters) != 1 || with.Clusters[0] != (ClusterWeight{v2Cluster, 100}) {
		t.Fatalf("with header: %+v", with)
	}
	// Istio's simulation does not evaluate header matches: without the header it still picks the first route
	// whose path fits, and says so.
	without := s.Requests[1]
	if deref(without.Route) != "canary-override" {
		t.Fatalf("without header: the simulation was expected to ignore headers, got %+v", without)
	}
	if len(without.NotEvaluated) != 1 || !strings.Contains(without.NotEvaluated[0], "x-canary") {
		t.Fatalf("notEvaluated: %v", without.NotEvaluated)
	}
}

// Envoy keeps the brackets of an IPv6 literal Host when it drops the port (HeaderUtility::getPortStart), the
// simulation does not (net.SplitHostPort): a domain "::1" is matched by the simulation only, and the note says so.
func TestIPv6AuthorityNoted(t *testing.T) {
	s := mustSucceed(t, workload+virtualService(`["::1"]`, `[rollouts/webapp-gateway]`, splitHTTP),
		Request{Authority: "[::1]:8080", Path: "/"}, Request{Authority: "localhost", Path: "/"})
	if notes := s.Requests[0].NotEvaluated; len(notes) != 1 || !strings.Contains(notes[0], "IPv6 literal") {
		t.Fatalf("[::1]:8080: notEvaluated %v", notes)
	}
	if notes := s.Requests[1].NotEvaluated; len(notes) != 0 {
		t.Fatalf("localhost: notEvaluated %v", notes)
	}
}

func TestRefused(t *testing.T) {
	for name, tc := range map[string]struct{ hosts, gateways, http, want string }{
		"wildcard host bound to mesh": {`["*"]`, `[rollouts/webapp-gateway, mesh]`, splitHTTP, "wildcard host * is not allowed"},
		"weights all zero": {`["*"]`, `[rollouts/webapp-gateway]`, `
    - route:
        - {destination: {host: webapp.rollouts.svc.cluster.local, subset: v1}, weight: 0}
        - {destination: {host: webapp.rollouts.svc.cluster.local, subset: v2}, weight: 0}
`, "weight"},
		"empty header prefix": {`["*"]`, `[rollouts/webapp-gateway]`, `
    - match: [{headers: {x-canary: {prefix: ""}}}]
      route: [{destination: {host: webapp.rollouts.svc.cluster.local}}]
`, "prefix string match should not be empty"},
		"invalid regex": {`["*"]`, `[rollouts/webapp-gateway]`, `
    - match: [{uri: {regex: "(["}}]
      route: [{destination: {host: webapp.rollouts.svc.cluster.local}}]
`, "regex"},
	} {
		t.Run(name, func(t *testing.T) {
			out := runCase(Input{ID: json.RawMessage(`"r"`), Config: workload + virtualService(tc.hosts, tc.gateways, tc.http)})
			f, ok := out.(Failure)
			if !ok {
				t.Fatalf("accepted: %+v", out)
			}
			joined := strings.Join(f.Errors, "\n")
			if !strings.Contains(joined, "VirtualService rollouts/webapp: ") || !strings.Contains(joined, tc.want) {
				t.Fatalf("errors: %q", f.Errors)
			}
		})
	}
}

// Istio 1.31 accepts an empty uri prefix on purpose (Envoy's prefix "" matches every path); it refuses empty
// prefixes only for headers, query parameters, scheme, method and authority.
func TestEmptyURIPrefixAccepted(t *testing.T) {
	s := mustSucceed(t, workload+virtualService(`["*"]`, `[rollouts/webapp-gateway]`, `
    - match: [{uri: {prefix: ""}}]
      route: [{destination: {host: webapp.rollouts.svc.cluster.local}}]
`), Request{Authority: "x", Path: "/any"})
	if r := s.Requests[0]; r.Error != nil || len(r.Clusters) != 1 {
		t.Fatalf("request: %+v", r)
	}
}

func TestLocalhostIsExpanded(t *testing.T) {
	localhost := Request{Authority: "localhost:8080", Path: "/"}
	loopback := Request{Authority: "127.0.0.1:8080", Path: "/"}

	s := mustSucceed(t, workload+virtualService(`[webapp.rollouts.svc.cluster.local, localhost, 127.0.0.1]`,
		`[rollouts/webapp-gateway, mesh]`, splitHTTP), localhost, loopback)
	if r := s.Requests[0]; deref(r.Error) != "no virtual host matched" || r.Route != nil {
		t.Fatalf("localhost: %+v", r)
	}
	var domains []string
	for _, vh := range routeConfig(t, s, "http.8080").VirtualHosts {
		domains = append(domains, vh.Domains...)
	}
	slices.Sort(domains)
	if strings.Join(domains, " ") != "127.0.0.1 localhost.rollouts.svc.cluster.local webapp.rollouts.svc.cluster.local" {
		t.Errorf("domains: %v", domains)
	}
	if r := s.Requests[1]; r.Error != nil || deref(r.Route) != "split" {
		t.Errorf("127.0.0.1: %+v", r)
	}

	s = mustSucceed(t, workload+virtualService(`["*"]`, `[rollouts/webapp-gateway]`, splitHTTP), localhost)
	if r := s.Requests[0]; r.Error != nil || deref(r.Route) != "split" {
		t.Fatalf("wildcard: %+v", r)
	}
}

func TestProtocolLines(t *testing.T) {
	in := strings.Join([]string{
		`not json`,
		`{"id": 7, "config": 3}`,
		`{"id": "unknown", "config": "", "extra": true}`,
		`{"id": "ok", "config": ` + jsonString(workload+virtualService(`["*"]`, `[rollouts/webapp-gateway]`, splitHTTP)) + `, "requests": [{"authority": "x:8080"}]}`,
	}, "\n")
	var out bytes.Buffer
	if err := serve(strings.NewReader(in), &out); err != nil {
		t.Fatal(err)
	}
	var lines []map[string]any
	sc := bufio.NewScanner(&out)
	sc.Buffer(nil, 16<<20)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("%v: %s", err, sc.Text())
		}
		lines = append(lines, m)
	}
	if len(lines) != 4 {
		t.Fatalf("%d lines", len(lines))
	}
	for i, want := range []any{nil, 7.0, "unknown"} {
		errs, _ := lines[i]["errors"].([]any)
		if lines[i]["ok"] != false || lines[i]["id"] != want || len(errs) != 1 || !strings.HasPrefix(errs[0].(string), "input: ") {
			t.Errorf("line %d: %v", i, lines[i])
		}
	}
	if lines[3]["ok"] != true || lines[3]["id"] != "ok" {
		t.Errorf("line 3: %v", lines[3]["errors"])
	}
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// The proxy reports the Istio release versions.env names for the pinned module.
func TestTagMatchesVersionsEnv(t *testing.T) {
	b, err := os.ReadFile("../../versions.env")
	if err != nil {
		t.Skip(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "ISTIO_GO_TAG="); ok && v != istioTag {
			t.Fatalf("versions.env ISTIO_GO_TAG=%s, main.istioTag=%s", v, istioTag)
		}
	}
}

// A typo in a spec: Istio drops the unknown field and compiles the rest; the oracle says so in a note.
func TestUnknownFieldNoted(t *testing.T) {
	s := mustSucceed(t, workload+virtualService(`["*"]`, `[rollouts/webapp-gateway]`, splitHTTP)+"  tiemout: 5s\n")
	if !strings.Contains(strings.Join(s.Notes, "\n"), "VirtualService rollouts/webapp: spec has fields Istio's schema does not know") {
		t.Fatalf("notes: %q", s.Notes)
	}
}

// Gateway API objects reach Istio through the fake cluster; a Gateway whose address is the existing
// istio-ingressgateway Service (a "manual deployment") programs the simulated gateway.
func TestGatewayAPIManualDeployment(t *testing.T) {
	s := mustSucceed(t, workload+`
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw, namespace: istio-system}
spec:
  gatewayClassName: istio
  addresses: [{type: Hostname, value: istio-ingressgateway.istio-system.svc.cluster.local}]
  listeners: [{name: http, port: 80, protocol: HTTP, allowedRoutes: {namespaces: {from: All}}}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: webapp, namespace: rollouts}
spec:
  parentRefs: [{name: gw, namespace: istio-system}]
  rules:
    - backendRefs: [{name: webapp, port: 80}]
`, Request{Authority: "localhost:8080", Path: "/"})
	r := s.Requests[0]
	want := ClusterWeight{"outbound|80||webapp.rollouts.svc.cluster.local", 100}
	if r.Error != nil || deref(r.Route) != "rollouts.webapp.0" || len(r.Clusters) != 1 || r.Clusters[0] != want {
		t.Fatalf("request: %+v", r)
	}
	if eps := s.Clusters[want.Name].Endpoints; len(eps) != 2 {
		t.Fatalf("endpoints: %+v", eps)
	}
}
