package main

import (
	"fmt"
	"maps"
	"net/netip"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"istio.io/istio/pilot/pkg/model"
)

// The ingress gateway as this repository installs it (scripts/istio-operator.yaml: istioctl's
// istio-ingressgateway component in istio-system, its Service a NodePort with only the ports listed there;
// scripts/kind-config.yaml maps host port 8080 to node port 30080).
const (
	gatewayNamespace      = "istio-system"
	gatewayName           = "istio-ingressgateway"
	gatewayServiceAccount = "istio-ingressgateway-service-account"
	gatewayPodName        = "istio-ingressgateway-oracle"
	gatewayPodIP          = "10.244.0.250"
	gatewayClusterIP      = "10.96.200.1"
)

// gatewaySelectorLabels are the gateway chart's `labels` (Service selector, Deployment selector).
var gatewaySelectorLabels = map[string]string{
	"app":   "istio-ingressgateway",
	"istio": "ingressgateway",
}

// gatewayPodLabels are the labels istioctl's gateway chart puts on the gateway pods in istio-system.
func gatewayPodLabels() map[string]string {
	l := maps.Clone(gatewaySelectorLabels)
	maps.Copy(l, map[string]string{
		"heritage":                            "Tiller",
		"release":                             "istio",
		"chart":                               "gateways",
		"service.istio.io/canonical-name":     gatewayName,
		"service.istio.io/canonical-revision": "latest",
		"istio.io/rev":                        "default",
		"operator.istio.io/component":         "IngressGateways",
		"sidecar.istio.io/inject":             "false",
		"app.kubernetes.io/name":              "istio-ingressgateway",
		"istio.io/dataplane-mode":             "none",
	})
	return l
}

func gatewayService() *corev1.Service {
	return &corev1.Service{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: metav1.ObjectMeta{
			Name: gatewayName, Namespace: gatewayNamespace,
			Labels: maps.Clone(gatewaySelectorLabels),
		},
		Spec: corev1.ServiceSpec{
			Type:       corev1.ServiceTypeNodePort,
			ClusterIP:  gatewayClusterIP,
			ClusterIPs: []string{gatewayClusterIP},
			Selector:   maps.Clone(gatewaySelectorLabels),
			Ports: []corev1.ServicePort{
				{Name: "status-port", Port: 15021, TargetPort: intstr.FromInt32(15021), Protocol: corev1.ProtocolTCP},
				{Name: "http2", Port: 80, TargetPort: intstr.FromInt32(8080), NodePort: 30080, Protocol: corev1.ProtocolTCP},
			},
		},
	}
}

func gatewayPod(svc *corev1.Service) *corev1.Pod {
	var ports []corev1.ContainerPort
	for _, p := range svc.Spec.Ports {
		ports = append(ports, corev1.ContainerPort{Name: p.Name, ContainerPort: p.TargetPort.IntVal, Protocol: corev1.ProtocolTCP})
	}
	return &corev1.Pod{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{
			Name: gatewayPodName, Namespace: gatewayNamespace, Labels: gatewayPodLabels(),
			Annotations: map[string]string{"sidecar.istio.io/inject": "false", "istio.io/rev": "default"},
		},
		Spec: corev1.PodSpec{
			ServiceAccountName: gatewayServiceAccount,
			Containers:         []corev1.Container{{Name: "istio-proxy", Image: "proxyv2", Ports: ports}},
		},
		Status: corev1.PodStatus{
			Phase: corev1.PodRunning, PodIP: gatewayPodIP, PodIPs: []corev1.PodIP{{IP: gatewayPodIP}},
			Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}},
		},
	}
}

func gatewayEndpointSlice(svc *corev1.Service, pod *corev1.Pod) *discoveryv1.EndpointSlice {
	ready := true
	var ports []discoveryv1.EndpointPort
	for _, p := range svc.Spec.Ports {
		port := p.TargetPort.IntVal
		if p.TargetPort.Type == intstr.String {
			port = namedPort(pod, p.TargetPort.StrVal)
		}
		ports = append(ports, discoveryv1.EndpointPort{Name: ptr(p.Name), Port: ptr(port), Protocol: ptr(corev1.ProtocolTCP)})
	}
	return &discoveryv1.EndpointSlice{
		TypeMeta: metav1.TypeMeta{APIVersion: "discovery.k8s.io/v1", Kind: "EndpointSlice"},
		ObjectMeta: metav1.ObjectMeta{
			Name: svc.Name + "-oracle", Namespace: svc.Namespace,
			Labels: map[string]string{discoveryv1.LabelServiceName: svc.Name, discoveryv1.LabelManagedBy: "endpointslice-controller.k8s.io"},
		},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints: []discoveryv1.Endpoint{{
			Addresses:  []string{pod.Status.PodIP},
			Conditions: discoveryv1.EndpointConditions{Ready: &ready},
			TargetRef:  &corev1.ObjectReference{Kind: "Pod", Namespace: pod.Namespace, Name: pod.Name},
		}},
		Ports: ports,
	}
}

func namedPort(pod *corev1.Pod, name string) int32 {
	for _, c := range pod.Spec.Containers {
		for _, p := range c.Ports {
			if p.Name == name {
				return p.ContainerPort
			}
		}
	}
	return 0
}

func ptr[T any](v T) *T { return &v }

func selects(selector, labels map[string]string) bool {
	if len(selector) == 0 {
		return false
	}
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// gatewaySetup is the gateway the oracle simulates: the Pod whose proxy gets the configuration and its Service.
type gatewaySetup struct {
	service *corev1.Service
	pod     *corev1.Pod
	// httpPort is the container port requests reach by default: the target port of the Service's port 80
	// (the http2 port kind's host port 8080 leads to).
	httpPort int
	// workloadName is the gateway's Deployment.
	workloadName string
}

// ensureGateway adds the repository's ingress gateway objects that the case does not supply itself, and
// finds the gateway pod to simulate. A Gateway API Gateway that Istio deploys itself (managed.go) is simulated
// instead of the classic ingress gateway when the case has one.
func (p *parsed) ensureGateway() (*gatewaySetup, error) {
	var g *gatewaySetup
	if c := p.managedGateway(); c != nil {
		g = p.ensureManagedGateway(c)
	} else {
		g = p.ensureIngressGateway()
	}
	if _, err := netip.ParseAddr(g.pod.Status.PodIP); err != nil {
		return nil, fmt.Errorf("gateway Pod %s/%s: status.podIP %q: %v", g.pod.Namespace, g.pod.Name, g.pod.Status.PodIP, err)
	}
	return g, nil
}

func (p *parsed) ensureIngressGateway() *gatewaySetup {
	g := p.ensureServiceAndPod(gatewayService(), gatewayPod, "the repository's ingress gateway", "", gatewayName)
	if g.httpPort == 0 {
		g.httpPort = 8080
	}
	return g
}

// ensureServiceAndPod finds the case's Service of svc's namespace and name, else adds svc; then the case's Pod
// that Service selects, else adds newPod(service). It adds the EndpointSlice and the ServiceAccount when missing
// and returns the gateway, its HTTP port the target of the Service's port 80 (0 when it has none). The notes
// say why the Service was added (svcWhy) and, after the Pod's name and IP, podOf.
func (p *parsed) ensureServiceAndPod(
	svc *corev1.Service, newPod func(*corev1.Service) *corev1.Pod, svcWhy, podOf, workloadName string,
) *gatewaySetup {
	var found *corev1.Service
	for _, s := range p.services() {
		if s.Name == svc.Name && s.Namespace == svc.Namespace {
			found = s
		}
	}
	if found == nil {
		p.objects = append(p.objects, svc)
		p.notes = append(p.notes, fmt.Sprintf("added Service %s/%s (%s)", svc.Namespace, svc.Name, svcWhy))
	} else {
		svc = found
	}
	var pod *corev1.Pod
	for _, candidate := range p.pods() {
		if candidate.Namespace == svc.Namespace && selects(svc.Spec.Selector, candidate.Labels) {
			pod = candidate
			break
		}
	}
	if pod == nil {
		pod = newPod(svc)
		p.objects = append(p.objects, pod)
		p.notes = append(p.notes, fmt.Sprintf("added Pod %s/%s (IP %s)%s", pod.Namespace, pod.Name, pod.Status.PodIP, podOf))
	}
	p.ensureSliceAndAccount(svc, pod)
	return &gatewaySetup{service: svc, pod: pod, workloadName: workloadName, httpPort: servicePortTarget(svc, pod, 80)}
}

// ensureSliceAndAccount adds the gateway Service's EndpointSlice and the Pod's ServiceAccount when missing.
func (p *parsed) ensureSliceAndAccount(svc *corev1.Service, pod *corev1.Pod) {
	hasSlice := false
	for _, es := range p.endpointSlices() {
		if es.Namespace == svc.Namespace && es.Labels[discoveryv1.LabelServiceName] == svc.Name {
			hasSlice = true
		}
	}
	if !hasSlice {
		p.objects = append(p.objects, gatewayEndpointSlice(svc, pod))
		p.notes = append(p.notes, fmt.Sprintf("added EndpointSlice %s/%s-oracle", svc.Namespace, svc.Name))
	}
	if !p.hasObject("ServiceAccount", pod.Namespace, pod.Spec.ServiceAccountName) && pod.Spec.ServiceAccountName != "" {
		p.objects = append(p.objects, &corev1.ServiceAccount{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ServiceAccount"},
			ObjectMeta: metav1.ObjectMeta{Name: pod.Spec.ServiceAccountName, Namespace: pod.Namespace, Labels: maps.Clone(svc.Labels)},
		})
	}
}

// servicePortTarget is the container port behind the Service's port `port` (0: the Service has no such port).
func servicePortTarget(svc *corev1.Service, pod *corev1.Pod, port int32) int {
	for _, sp := range svc.Spec.Ports {
		if sp.Port != port {
			continue
		}
		target := int(sp.TargetPort.IntVal)
		if sp.TargetPort.Type == intstr.String {
			target = int(namedPort(pod, sp.TargetPort.StrVal))
		}
		if target == 0 {
			target = int(port)
		}
		return target
	}
	return 0
}

// proxy is the gateway's Envoy as istiod sees it when it connects: a router node with the pod's identity.
func (g *gatewaySetup) proxy() *model.Proxy {
	ns := g.pod.Namespace
	return &model.Proxy{
		Type:            model.Router,
		IPAddresses:     []string{g.pod.Status.PodIP},
		ID:              g.pod.Name + "." + ns,
		ConfigNamespace: ns,
		DNSDomain:       ns + ".svc.cluster.local",
		Labels:          maps.Clone(g.pod.Labels),
		Metadata: &model.NodeMetadata{
			IstioVersion:   istioTag,
			Namespace:      ns,
			Labels:         maps.Clone(g.pod.Labels),
			ServiceAccount: g.pod.Spec.ServiceAccountName,
			WorkloadName:   g.workloadName,
			ClusterID:      "Kubernetes",
			InstanceIPs:    []string{g.pod.Status.PodIP},
		},
	}
}

// fillDefaults does what the API server would: namespaces exist, Services have a cluster IP.
func (p *parsed) fillDefaults() {
	namespaces := map[string]bool{}
	for _, o := range p.objects {
		if n, ok := o.(*corev1.Namespace); ok {
			namespaces[n.Name] = true
		}
	}
	add := func(ns string) {
		if ns == "" || namespaces[ns] {
			return
		}
		namespaces[ns] = true
		p.objects = append(p.objects, &corev1.Namespace{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Namespace"},
			ObjectMeta: metav1.ObjectMeta{Name: ns, Labels: map[string]string{"kubernetes.io/metadata.name": ns}},
		})
	}
	for _, o := range append([]any(nil), anySlice(p.objects)...) {
		if m, ok := o.(metav1.Object); ok {
			add(m.GetNamespace())
		}
	}
	for _, c := range p.configs {
		add(c.Namespace)
	}
	next := 1
	for _, s := range p.services() {
		if s.Spec.ClusterIP == "" && s.Spec.Type != corev1.ServiceTypeExternalName {
			ip := fmt.Sprintf("10.96.100.%d", next)
			next++
			s.Spec.ClusterIP = ip
			s.Spec.ClusterIPs = []string{ip}
			p.notes = append(p.notes, fmt.Sprintf("Service %s/%s: cluster IP %s assigned", s.Namespace, s.Name, ip))
		}
	}
}

func anySlice[T any](in []T) []any {
	out := make([]any, len(in))
	for i, v := range in {
		out[i] = v
	}
	return out
}
