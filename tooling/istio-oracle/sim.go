package main

import (
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"

	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"google.golang.org/protobuf/proto"

	"istio.io/istio/pilot/pkg/simulation"
)

// RequestResult is Istio's simulated routing decision for one request on the gateway.
type RequestResult struct {
	Listener       *string         `json:"listener"`
	RouteConfig    *string         `json:"routeConfig"`
	VirtualHost    *string         `json:"virtualHost"`
	Route          *string         `json:"route"`
	Clusters       []ClusterWeight `json:"clusters"`
	DirectResponse *DirectResponse `json:"directResponse"`
	Redirect       any             `json:"redirect"`
	Error          *string         `json:"error"`
	// NotEvaluated lists the match conditions of the routes the simulation went through (up to and including
	// the chosen one, or all of them when none was chosen) that Istio's simulation does not evaluate, so
	// Envoy may decide differently. Empty: the decision depends only on what the simulation honours.
	NotEvaluated []string `json:"notEvaluated"`
}

// ClusterWeight is one destination of the chosen route (a single cluster has weight 100).
type ClusterWeight struct {
	Name   string `json:"name"`
	Weight uint32 `json:"weight"`
}

// DirectResponse is a route answered by Envoy itself.
type DirectResponse struct {
	Status uint32 `json:"status"`
}

// newSimT gives the simulation the *testing.T it insists on. Istio's simulation only calls Fatal on it for
// configuration it cannot interpret; on a zero testing.T that ends in a panic, which simulate recovers.
func newSimT() *testing.T {
	return &testing.T{}
}

func strp(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// simulate runs Istio's Envoy simulation (pilot/pkg/simulation) for one request and looks up the Route proto
// it chose to report the destinations.
func simulate(sim *simulation.Simulation, gw *gatewaySetup, routes []*route.RouteConfiguration, req Request) (res RequestResult) {
	res.Clusters = []ClusterWeight{}
	res.NotEvaluated = []string{}
	call := simulation.Call{
		Address:  gw.pod.Status.PodIP,
		Port:     gw.httpPort,
		Path:     req.Path,
		Protocol: simulation.HTTP,
		CallMode: simulation.CallModeGateway,
		Headers:  http.Header{},
	}
	if req.Port != 0 {
		call.Port = req.Port
	}
	if req.Protocol == "http2" {
		call.Protocol = simulation.HTTP2
	} else if req.Protocol != "" && req.Protocol != "http" {
		res.Error = strp(fmt.Sprintf("input: protocol %q: want http or http2", req.Protocol))
		return res
	}
	for k, v := range req.Headers {
		call.Headers[k] = append([]string(nil), v...)
	}
	authority := req.Authority
	if authority == "" {
		for k, v := range req.Headers {
			if strings.EqualFold(k, "host") && len(v) > 0 {
				authority = v[0]
			}
		}
	}
	call.HostHeader = authority

	var result simulation.Result
	func() {
		defer func() {
			if r := recover(); r != nil {
				result = simulation.Result{Error: fmt.Errorf("simulation aborted: Istio's simulation cannot interpret this configuration (%v)", r)}
			}
		}()
		result = sim.Run(call)
	}()
	res.Listener = strp(result.ListenerMatched)
	res.RouteConfig = strp(result.RouteConfigMatched)
	res.VirtualHost = strp(result.VirtualHostMatched)
	if result.Error != nil {
		res.Error = strp(result.Error.Error())
	}

	vh := findVirtualHost(routes, result.RouteConfigMatched, result.VirtualHostMatched)
	if vh == nil {
		res.NotEvaluated = notEvaluated(nil, "", authority)
		return res
	}
	path := call.Path
	if path == "" {
		path = "/"
	}
	idx := -1
	if result.Error == nil {
		idx = firstPathMatch(vh, path)
		if idx < 0 || vh.Routes[idx].Name != result.RouteMatched {
			idx = -1
			for i, r := range vh.Routes {
				if r.Name == result.RouteMatched {
					idx = i
					break
				}
			}
		}
	}
	considered := vh.Routes
	if idx >= 0 {
		considered = vh.Routes[:idx+1]
	}
	res.NotEvaluated = notEvaluated(considered, path, authority)
	if idx < 0 {
		return res
	}
	r := vh.Routes[idx]
	name := r.Name // "" for an unnamed VirtualService http route: still a chosen route
	res.Route = &name
	switch a := r.GetAction().(type) {
	case *route.Route_Route:
		if c := a.Route.GetCluster(); c != "" {
			res.Clusters = append(res.Clusters, ClusterWeight{Name: c, Weight: 100})
		}
		for _, wc := range a.Route.GetWeightedClusters().GetClusters() {
			res.Clusters = append(res.Clusters, ClusterWeight{Name: wc.GetName(), Weight: wc.GetWeight().GetValue()})
		}
		if a.Route.GetClusterHeader() != "" {
			res.NotEvaluated = append(res.NotEvaluated, fmt.Sprintf("route %q: cluster taken from header %q", r.Name, a.Route.GetClusterHeader()))
		}
	case *route.Route_DirectResponse:
		res.DirectResponse = &DirectResponse{Status: a.DirectResponse.GetStatus()}
	case *route.Route_Redirect:
		if js, err := marshalProto(a.Redirect); err == nil {
			res.Redirect = js
		}
	}
	return res
}

func findVirtualHost(routes []*route.RouteConfiguration, rcName, vhName string) *route.VirtualHost {
	if vhName == "" {
		return nil
	}
	for _, rc := range routes {
		if rc.Name != rcName {
			continue
		}
		for _, vh := range rc.VirtualHosts {
			if vh.Name == vhName {
				return vh
			}
		}
	}
	return nil
}

// firstPathMatch is the index of the route Istio's simulation picks: the first whose path matcher fits the
// request path, compared as the simulation does (prefix and path-separated prefix as string prefixes, exact
// path, regex as an unanchored search), ignoring every other condition.
func firstPathMatch(vh *route.VirtualHost, path string) int {
	for i, r := range vh.Routes {
		switch pt := r.GetMatch().GetPathSpecifier().(type) {
		case *route.RouteMatch_Prefix:
			if strings.HasPrefix(path, pt.Prefix) {
				return i
			}
		case *route.RouteMatch_PathSeparatedPrefix:
			if strings.HasPrefix(path, pt.PathSeparatedPrefix) {
				return i
			}
		case *route.RouteMatch_Path:
			if path == pt.Path {
				return i
			}
		case *route.RouteMatch_SafeRegex:
			if re, err := regexp.Compile(pt.SafeRegex.GetRegex()); err == nil && re.MatchString(path) {
				return i
			}
		default:
			return -1
		}
	}
	return -1
}

// notEvaluated describes the conditions of the given routes that Istio's simulation ignores or evaluates
// differently from Envoy.
func notEvaluated(routes []*route.Route, path, authority string) []string {
	out := []string{}
	pathMatchers := false
	for i, r := range routes {
		m := r.GetMatch()
		who := fmt.Sprintf("route[%d] %q", i, r.Name)
		for _, h := range m.GetHeaders() {
			out = append(out, fmt.Sprintf("%s: header match %s", who, compactProto(h)))
		}
		for _, q := range m.GetQueryParameters() {
			out = append(out, fmt.Sprintf("%s: query parameter match %s", who, compactProto(q)))
		}
		if cs := m.GetCaseSensitive(); cs != nil && !cs.GetValue() {
			out = append(out, who+": case-insensitive path match (the simulation compares case-sensitively)")
		}
		switch pt := m.GetPathSpecifier().(type) {
		case *route.RouteMatch_PathSeparatedPrefix:
			out = append(out, fmt.Sprintf("%s: path_separated_prefix %q (the simulation treats it as a plain prefix)", who, pt.PathSeparatedPrefix))
			pathMatchers = true
		case *route.RouteMatch_SafeRegex:
			out = append(out, fmt.Sprintf("%s: regex %q (the simulation searches; Envoy requires the whole path to match)", who, pt.SafeRegex.GetRegex()))
			pathMatchers = true
		case *route.RouteMatch_Path:
			pathMatchers = true
		case *route.RouteMatch_Prefix:
			if pt.Prefix != "/" {
				pathMatchers = true
			}
		}
		if m.GetRuntimeFraction() != nil {
			out = append(out, who+": runtime_fraction")
		}
		if m.GetGrpc() != nil {
			out = append(out, who+": grpc match")
		}
		if m.GetTlsContext() != nil {
			out = append(out, who+": tls_context match")
		}
		if len(m.GetDynamicMetadata()) > 0 || len(m.GetFilterState()) > 0 {
			out = append(out, who+": metadata/filter state match")
		}
	}
	if pathMatchers && strings.ContainsAny(path, "?#") {
		out = append(out, "request path has a query or fragment: the simulation matches the raw path, Envoy the path without it")
	}
	if pathMatchers && (strings.Contains(path, "/.") || strings.Contains(path, "%") || strings.Contains(path, "\\")) {
		out = append(out, "request path has dot segments, percent-encoding or backslashes: Envoy normalises it first (Istio's default BASE normalisation), the simulation does not")
	}
	if authority != strings.ToLower(authority) {
		out = append(out, "authority has upper-case letters: the simulation matches domains case-sensitively, Envoy does not")
	}
	if strings.HasPrefix(authority, "[") {
		out = append(out, "authority is an IPv6 literal: the simulation strips its brackets (net.SplitHostPort: [::1]:8080 is ::1), Envoy keeps them ([::1])")
	}
	return out
}

func compactProto(m proto.Message) string {
	js, err := marshalProto(m)
	if err != nil {
		return fmt.Sprint(m)
	}
	return string(js)
}
