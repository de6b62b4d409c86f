package main

import (
	"fmt"
	"maps"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"istio.io/api/annotation"
	"istio.io/istio/pilot/pkg/config/kube/gatewaycommon"
	"istio.io/istio/pkg/config"
	"istio.io/istio/pkg/config/schema/gvk"
)

// A Gateway API Gateway of class istio without a Hostname address is one Istio deploys itself ("automated
// deployment"): istiod's deployment controller renders its kube-gateway template (manifests/charts/istio-control/
// istio-discovery/files/kube-gateway.yaml) into a ServiceAccount, Deployment and Service named
// <gateway>-<class> in the Gateway's namespace. The oracle adds those objects as the template renders them (the
// Service's ports: status-port 15021, then one per listener port, target port = port; its type from the
// networking.istio.io/service-type annotation, LoadBalancer by default) and one running Pod of that Deployment,
// and simulates that Pod's proxy. Node ports (the parametersRef ConfigMap's Service patch) do not change what
// istiod sends the proxy and are not applied.

const managedGatewayPodIP = "10.244.0.251"

// managedGateway is the first Gateway API Gateway of class istio that Istio would deploy itself, or nil.
func (p *parsed) managedGateway() *config.Config {
	for i := range p.configs {
		c := &p.configs[i]
		if c.GroupVersionKind != gvk.KubernetesGateway {
			continue
		}
		spec, ok := c.Spec.(*gatewayv1.GatewaySpec)
		if !ok || string(spec.GatewayClassName) != "istio" || !gatewaycommon.IsManaged(spec) {
			continue
		}
		return c
	}
	return nil
}

// managedGatewayObjects returns the Service and Pod Istio's deployment controller gives a managed Gateway.
func managedGatewayObjects(c *config.Config) (*corev1.Service, *corev1.Pod, string) {
	spec := c.Spec.(*gatewayv1.GatewaySpec)
	name := gatewaycommon.GetDefaultName(c.Name, spec, false)
	gatewayLabels := map[string]string{}
	maps.Copy(gatewayLabels, c.Labels)
	gatewayLabels["gateway.networking.k8s.io/gateway-name"] = c.Name
	gatewayLabels["gateway.networking.k8s.io/gateway-class-name"] = string(spec.GatewayClassName)
	serviceType := corev1.ServiceTypeLoadBalancer
	if t, ok := c.Annotations[annotation.NetworkingServiceType.Name]; ok {
		serviceType = corev1.ServiceType(t)
	}
	tcp := "tcp"
	ports := []corev1.ServicePort{{Name: "status-port", Port: 15021, TargetPort: intstr.FromInt32(15021),
		Protocol: corev1.ProtocolTCP, AppProtocol: &tcp}}
	seen := map[int32]bool{}
	for _, l := range spec.Listeners {
		if seen[l.Port] {
			continue
		}
		seen[l.Port] = true
		appProtocol := strings.ToLower(string(l.Protocol))
		portName := strings.ReplaceAll(string(l.Name), ".", "-")
		ports = append(ports, corev1.ServicePort{Name: portName, Port: l.Port, TargetPort: intstr.FromInt32(l.Port),
			Protocol: corev1.ProtocolTCP, AppProtocol: &appProtocol})
	}
	selector := map[string]string{"gateway.networking.k8s.io/gateway-name": c.Name}
	svc := &corev1.Service{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: c.Namespace, Labels: maps.Clone(gatewayLabels)},
		Spec: corev1.ServiceSpec{
			Type: serviceType, Selector: selector, Ports: ports,
			ClusterIP: gatewayClusterIP, ClusterIPs: []string{gatewayClusterIP},
		},
	}
	podLabels := map[string]string{
		"sidecar.istio.io/inject":             "false",
		"service.istio.io/canonical-name":     name,
		"service.istio.io/canonical-revision": "latest",
	}
	maps.Copy(podLabels, gatewayLabels)
	podLabels["gateway.istio.io/managed"] = "istio.io-gateway-controller"
	var containerPorts []corev1.ContainerPort
	for _, sp := range ports {
		containerPorts = append(containerPorts, corev1.ContainerPort{Name: sp.Name, ContainerPort: sp.Port, Protocol: corev1.ProtocolTCP})
	}
	pod := &corev1.Pod{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{
			Name: name + "-oracle", Namespace: c.Namespace, Labels: podLabels,
			Annotations: map[string]string{"istio.io/rev": "default"},
		},
		Spec: corev1.PodSpec{
			ServiceAccountName: name,
			Containers:         []corev1.Container{{Name: "istio-proxy", Image: "proxyv2", Ports: containerPorts}},
		},
		Status: corev1.PodStatus{
			Phase: corev1.PodRunning, PodIP: managedGatewayPodIP, PodIPs: []corev1.PodIP{{IP: managedGatewayPodIP}},
			Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}},
		},
	}
	return svc, pod, name
}

// ensureManagedGateway adds the objects Istio deploys for a managed Gateway (those the case does not supply)
// and returns the gateway to simulate.
func (p *parsed) ensureManagedGateway(c *config.Config) *gatewaySetup {
	svc, pod, name := managedGatewayObjects(c)
	g := p.ensureServiceAndPod(svc, func(*corev1.Service) *corev1.Pod { return pod },
		fmt.Sprintf("Istio deploys it for Gateway %s/%s", c.Namespace, c.Name),
		fmt.Sprintf(" of Istio's Deployment %s/%s", pod.Namespace, name), name)
	if g.httpPort == 0 {
		for _, l := range c.Spec.(*gatewayv1.GatewaySpec).Listeners {
			g.httpPort = int(l.Port)
			break
		}
	}
	return g
}
