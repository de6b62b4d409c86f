package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	corev1 "k8s.io/api/core/v1"

	meshconfig "istio.io/api/mesh/v1alpha1"
	"istio.io/istio/pilot/pkg/simulation"
	"istio.io/istio/pilot/pkg/xds/endpoints"
	"istio.io/istio/pilot/test/xds"
	"istio.io/istio/pkg/config/mesh"
	"istio.io/istio/pkg/kube/krt"
)

// Input is one line of the protocol.
type Input struct {
	ID       json.RawMessage `json:"id"`
	Config   string          `json:"config"`
	Requests []Request       `json:"requests"`
}

// Request is one HTTP request to simulate on the gateway.
type Request struct {
	Authority string              `json:"authority"`
	Method    string              `json:"method,omitempty"`
	Path      string              `json:"path,omitempty"`
	Headers   map[string][]string `json:"headers,omitempty"`
	// Port is the gateway container port the request reaches; default: the target port of the gateway
	// Service's port 80 (8080 for this repository's gateway).
	Port int `json:"port,omitempty"`
	// Protocol is "http" (HTTP/1.1, default) or "http2".
	Protocol string `json:"protocol,omitempty"`
}

// Failure is the answer for a refused or malformed case.
type Failure struct {
	ID     json.RawMessage `json:"id"`
	OK     bool            `json:"ok"`
	Errors []string        `json:"errors"`
	Notes  []string        `json:"notes,omitempty"`
}

// Success is the answer for a compiled case.
type Success struct {
	ID       json.RawMessage        `json:"id"`
	OK       bool                   `json:"ok"`
	Warnings []string               `json:"warnings"`
	Notes    []string               `json:"notes"`
	Routes   []json.RawMessage      `json:"routes"`
	Clusters map[string]ClusterInfo `json:"clusters"`
	Requests []RequestResult        `json:"requests"`
}

// ClusterInfo is what the gateway gets for one cluster a route names.
type ClusterInfo struct {
	// Missing: the gateway's CDS has no cluster of that name (Envoy answers 503 "NC" for it).
	Missing   bool           `json:"missing,omitempty"`
	Endpoints []EndpointInfo `json:"endpoints"`
}

// EndpointInfo is one endpoint of a cluster's load assignment, with the labels of the Pod at that address.
type EndpointInfo struct {
	Address      string            `json:"address"`
	Port         uint32            `json:"port"`
	HealthStatus string            `json:"healthStatus"`
	Weight       uint32            `json:"weight,omitempty"`
	PodLabels    map[string]string `json:"podLabels"`
}

var (
	protoJSON = protojson.MarshalOptions{}
	nullID    = json.RawMessage("null")
)

func marshalProto(m proto.Message) (json.RawMessage, error) {
	b, err := protoJSON.Marshal(m)
	if err != nil {
		return nil, err
	}
	// protojson's output has deliberately unstable whitespace; compact it to one stable line.
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func fail(id json.RawMessage, notes []string, errs ...string) Failure {
	if id == nil {
		id = nullID
	}
	return Failure{ID: id, OK: false, Errors: errs, Notes: notes}
}

// meshConfig is the mesh configuration of this repository's install: istioctl's defaults plus the
// IstioOperator's meshConfig (scripts/istio-operator.yaml).
func meshConfig() *meshconfig.MeshConfig {
	m := mesh.DefaultMeshConfig()
	m.AccessLogFile = "/dev/stdout"
	return m
}

// runCase validates and compiles one case. It never panics: Istio's failures become a Failure.
func runCase(in Input) any {
	id := in.ID
	if id == nil {
		id = nullID
	}
	p := parseConfig(in.Config)
	if len(p.errors) > 0 {
		return fail(id, p.notes, p.errors...)
	}
	gw, err := p.ensureGateway()
	if err != nil {
		return fail(id, p.notes, err.Error())
	}
	p.fillDefaults()

	f := &failer{}
	done := make(chan any, 1)
	go func() {
		var out any
		completed := false
		defer func() {
			if r := recover(); r != nil {
				out = fail(id, p.notes, fmt.Sprintf("istio: panic: %v", r))
			} else if !completed {
				// runtime.Goexit from the failer: Istio's set-up called Fatal.
				out = fail(id, p.notes, append([]string{"istio: discovery server failed"}, f.errors()...)...)
			}
			f.runCleanups()
			done <- out
		}()
		out = compile(f, id, p, gw, in.Requests)
		completed = true
	}()
	out := <-done
	resetGlobalDebugHandler()
	return out
}

// resetGlobalDebugHandler drops the krt collections each case's discovery server registers with krt's global
// debug handler; without this every case's collections stay reachable for the life of the process.
func resetGlobalDebugHandler() {
	*krt.GlobalDebugHandler = krt.DebugHandler{}
}

func compile(f *failer, id json.RawMessage, p *parsed, gw *gatewaySetup, requests []Request) any {
	objects := p.objects
	fake := xds.NewFakeDiscoveryServer(f, xds.FakeOptions{
		Configs:           p.configs,
		KubernetesObjects: objects,
		MeshConfig:        meshConfig(),
	})
	proxy := fake.SetupProxy(gw.proxy())
	sim := simulation.NewSimulation(newSimT(), fake, proxy)

	out := Success{ID: id, OK: true, Warnings: nonNil(p.warnings), Notes: nonNil(p.notes),
		Routes: []json.RawMessage{}, Clusters: map[string]ClusterInfo{}, Requests: []RequestResult{}}

	routes := append([]*route.RouteConfiguration(nil), sim.Routes...)
	sort.SliceStable(routes, func(i, j int) bool { return routes[i].Name < routes[j].Name })
	referenced := map[string]bool{}
	for _, rc := range routes {
		js, err := marshalProto(rc)
		if err != nil {
			return fail(id, p.notes, fmt.Sprintf("route configuration %s: %v", rc.Name, err))
		}
		out.Routes = append(out.Routes, js)
		for _, vh := range rc.VirtualHosts {
			for _, r := range vh.Routes {
				for _, c := range routeClusters(r) {
					referenced[c] = true
				}
			}
		}
	}

	podLabels := map[string]map[string]string{}
	for _, pod := range p.pods() {
		for _, ip := range podIPs(pod) {
			podLabels[ip] = pod.Labels
		}
	}
	cds := map[string]*cluster.Cluster{}
	for _, c := range sim.Clusters {
		cds[c.Name] = c
	}
	for name := range referenced {
		c, ok := cds[name]
		if !ok {
			out.Clusters[name] = ClusterInfo{Missing: true, Endpoints: []EndpointInfo{}}
			continue
		}
		var cla *endpoint.ClusterLoadAssignment
		if c.GetType() == cluster.Cluster_EDS {
			builder := endpoints.NewEndpointBuilder(name, proxy, fake.PushContext())
			cla = builder.BuildClusterLoadAssignment(fake.Discovery.Env.EndpointIndex)
		} else {
			cla = c.GetLoadAssignment()
		}
		out.Clusters[name] = ClusterInfo{Endpoints: endpointInfos(cla, podLabels)}
	}

	for _, req := range requests {
		out.Requests = append(out.Requests, simulate(sim, gw, routes, req))
	}
	return out
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func podIPs(pod *corev1.Pod) []string {
	ips := []string{}
	if pod.Status.PodIP != "" {
		ips = append(ips, pod.Status.PodIP)
	}
	for _, ip := range pod.Status.PodIPs {
		if ip.IP != pod.Status.PodIP {
			ips = append(ips, ip.IP)
		}
	}
	return ips
}

// routeClusters lists the clusters a route sends to or mirrors to.
func routeClusters(r *route.Route) []string {
	var out []string
	a := r.GetRoute()
	if a == nil {
		return nil
	}
	if c := a.GetCluster(); c != "" {
		out = append(out, c)
	}
	for _, wc := range a.GetWeightedClusters().GetClusters() {
		out = append(out, wc.GetName())
	}
	for _, m := range a.GetRequestMirrorPolicies() {
		if m.GetCluster() != "" {
			out = append(out, m.GetCluster())
		}
	}
	return out
}

func endpointInfos(cla *endpoint.ClusterLoadAssignment, podLabels map[string]map[string]string) []EndpointInfo {
	out := []EndpointInfo{}
	for _, locality := range cla.GetEndpoints() {
		for _, lb := range locality.GetLbEndpoints() {
			sa := lb.GetEndpoint().GetAddress().GetSocketAddress()
			if sa == nil {
				continue
			}
			e := EndpointInfo{
				Address:      sa.GetAddress(),
				Port:         sa.GetPortValue(),
				HealthStatus: lb.GetHealthStatus().String(),
				Weight:       lb.GetLoadBalancingWeight().GetValue(),
				PodLabels:    podLabels[sa.GetAddress()],
			}
			out = append(out, e)
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Address != out[j].Address {
			return out[i].Address < out[j].Address
		}
		return out[i].Port < out[j].Port
	})
	return out
}
