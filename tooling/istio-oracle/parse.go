package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"google.golang.org/protobuf/proto"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	kubeyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	"istio.io/istio/pilot/pkg/config/kube/crd"
	"istio.io/istio/pkg/config"
	"istio.io/istio/pkg/config/schema/collections"
	"istio.io/istio/pkg/config/schema/resource"
	kubelib "istio.io/istio/pkg/kube"
	"istio.io/istio/pkg/util/protomarshal"
)

// parsed is the content of one case's `config`, split the way Istio reads it: Istio configuration objects
// (converted and validated with Istio's own schema code) and Kubernetes objects (decoded with Istio's codec).
type parsed struct {
	configs  []config.Config
	objects  []runtime.Object
	warnings []string // Istio validation warnings
	errors   []string // parse or validation errors; the case is refused when there is any
	notes    []string // what the oracle ignored or added
}

// domainSuffix is the cluster's DNS domain (kind's default, and istiod's).
const domainSuffix = "cluster.local"

// kubeKinds are the Kubernetes kinds handed to the fake cluster; other Kubernetes kinds are ignored with a note.
var kubeKinds = map[string]bool{
	"Namespace": true, "Service": true, "Pod": true, "EndpointSlice": true, "ServiceAccount": true,
	"Node": true, "Secret": true, "ConfigMap": true,
}

func objectName(kind, namespace, name string) string {
	if namespace == "" {
		return kind + " " + name
	}
	return kind + " " + namespace + "/" + name
}

// splitErrors turns Istio's multi-errors into one message each.
func splitErrors(err error) []error {
	if err == nil {
		return nil
	}
	if m, ok := err.(interface{ WrappedErrors() []error }); ok {
		var out []error
		for _, e := range m.WrappedErrors() {
			out = append(out, splitErrors(e)...)
		}
		return out
	}
	if m, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range m.Unwrap() {
			out = append(out, splitErrors(e)...)
		}
		return out
	}
	return []error{err}
}

func parseConfig(input string) *parsed {
	p := &parsed{}
	reader := kubeyaml.NewYAMLReader(bufio.NewReader(strings.NewReader(input)))
	for index := 0; ; index++ {
		doc, err := reader.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			p.errors = append(p.errors, fmt.Sprintf("document %d: cannot read YAML: %v", index, err))
			return p
		}
		js, err := yaml.YAMLToJSON(doc)
		if err != nil {
			p.errors = append(p.errors, fmt.Sprintf("document %d: cannot parse YAML: %v", index, err))
			continue
		}
		if s := strings.TrimSpace(string(js)); s == "null" || s == "" || s == "{}" {
			continue // empty document (comments only)
		}
		var head struct {
			metav1.TypeMeta `json:",inline"`
			Metadata        metav1.ObjectMeta `json:"metadata"`
		}
		if err := json.Unmarshal(js, &head); err != nil {
			p.errors = append(p.errors, fmt.Sprintf("document %d: %v", index, err))
			continue
		}
		if head.Kind == "" || head.APIVersion == "" {
			p.errors = append(p.errors, fmt.Sprintf("document %d: apiVersion and kind are required", index))
			continue
		}
		gv, err := schema.ParseGroupVersion(head.APIVersion)
		if err != nil {
			p.errors = append(p.errors, fmt.Sprintf("document %d: %v", index, err))
			continue
		}
		gvk := gv.WithKind(head.Kind)
		name := objectName(head.Kind, head.Metadata.Namespace, head.Metadata.Name)
		if strings.HasPrefix(gvk.Group, "gateway.networking.") {
			admitted, errs := loadAdmission().admit(js, gvk)
			if len(errs) > 0 {
				for _, e := range errs {
					p.errors = append(p.errors, fmt.Sprintf("%s: %s", name, e))
				}
				continue
			}
			js = admitted
		}
		if s, ok := collections.PilotGatewayAPI().FindByGroupVersionAliasesKind(resource.FromKubernetesGVK(&gvk)); ok {
			p.addIstio(s, js, name)
			continue
		}
		p.addKube(js, gvk, name)
	}
	return p
}

// addIstio converts and validates one Istio (or Gateway API) object as istiod's validation webhook would.
func (p *parsed) addIstio(s resource.Schema, js []byte, name string) {
	obj := crd.IstioKind{}
	if err := json.Unmarshal(js, &obj); err != nil {
		p.errors = append(p.errors, fmt.Sprintf("%s: cannot parse: %v", name, err))
		return
	}
	// istiod's Kubernetes config client stamps the cluster's domain suffix on every object; short hosts
	// ("localhost" in a VirtualService) resolve against it (localhost.<namespace>.svc.cluster.local).
	// Istio's own test helpers (crd.ParseInputs) leave it empty, which resolves them to "localhost.<namespace>".
	cfg, err := crd.ConvertObject(s, &obj, domainSuffix)
	if err != nil {
		p.errors = append(p.errors, fmt.Sprintf("%s: cannot parse proto message: %v", name, err))
		return
	}
	if err := strictSpec(s, obj.Spec); err != nil {
		p.notes = append(p.notes, fmt.Sprintf("%s: spec has fields Istio's schema does not know; Istio drops them, "+
			"the API server's strict field validation (kubectl apply's default) refuses them: %v", name, err))
	}
	if cfg.Namespace == "" && !s.IsClusterScoped() {
		cfg.Namespace = metav1.NamespaceDefault
		name = objectName(s.Kind(), cfg.Namespace, cfg.Name)
		p.notes = append(p.notes, name+": no namespace given, using default")
	}
	warning, err := s.ValidateConfig(*cfg)
	for _, w := range splitErrors(warning) {
		p.warnings = append(p.warnings, fmt.Sprintf("%s: %v", name, w))
	}
	if err != nil {
		for _, e := range splitErrors(err) {
			p.errors = append(p.errors, fmt.Sprintf("%s: %v", name, e))
		}
		return
	}
	p.configs = append(p.configs, *cfg)
	// Istio reads Gateway API objects through its Kubernetes client (krt collections), not the config store:
	// like Istio's own tests, give them to the fake cluster as typed objects too.
	if strings.HasPrefix(s.Group(), "gateway.networking.") {
		obj, _, err := kubelib.IstioCodec.UniversalDeserializer().Decode(js, nil, nil)
		if err != nil {
			p.errors = append(p.errors, fmt.Sprintf("%s: %v", name, err))
			return
		}
		if m, ok := obj.(metav1.Object); ok && m.GetNamespace() == "" && !s.IsClusterScoped() {
			m.SetNamespace(cfg.Namespace)
		}
		p.objects = append(p.objects, obj)
	}
}

// strictSpec decodes a spec again, refusing unknown fields (Istio's own decoder retries without that check).
func strictSpec(s resource.Schema, spec json.RawMessage) error {
	if len(spec) == 0 {
		return nil
	}
	inst, err := s.NewInstance()
	if err != nil {
		return nil
	}
	if pb, ok := inst.(proto.Message); ok {
		return protomarshal.ApplyJSONStrict(string(spec), pb)
	}
	dec := json.NewDecoder(bytes.NewReader(spec))
	dec.DisallowUnknownFields()
	return dec.Decode(inst)
}

func (p *parsed) addKube(js []byte, gvk schema.GroupVersionKind, name string) {
	if !kubeKinds[gvk.Kind] {
		p.notes = append(p.notes, fmt.Sprintf("%s (%s): ignored", name, gvk.GroupVersion()))
		return
	}
	obj, _, err := kubelib.IstioCodec.UniversalDeserializer().Decode(js, nil, nil)
	if err != nil {
		p.errors = append(p.errors, fmt.Sprintf("%s: %v", name, err))
		return
	}
	meta, ok := obj.(metav1.Object)
	if !ok {
		p.notes = append(p.notes, name+": ignored (no object metadata)")
		return
	}
	if meta.GetNamespace() == "" && gvk.Kind != "Namespace" && gvk.Kind != "Node" {
		meta.SetNamespace(metav1.NamespaceDefault)
		p.notes = append(p.notes, name+": no namespace given, using default")
	}
	p.objects = append(p.objects, obj)
}

// Helpers over the Kubernetes objects of a case.

func (p *parsed) services() []*corev1.Service {
	var out []*corev1.Service
	for _, o := range p.objects {
		if s, ok := o.(*corev1.Service); ok {
			out = append(out, s)
		}
	}
	return out
}

func (p *parsed) pods() []*corev1.Pod {
	var out []*corev1.Pod
	for _, o := range p.objects {
		if s, ok := o.(*corev1.Pod); ok {
			out = append(out, s)
		}
	}
	return out
}

func (p *parsed) endpointSlices() []*discoveryv1.EndpointSlice {
	var out []*discoveryv1.EndpointSlice
	for _, o := range p.objects {
		if s, ok := o.(*discoveryv1.EndpointSlice); ok {
			out = append(out, s)
		}
	}
	return out
}

func (p *parsed) hasObject(kind, namespace, name string) bool {
	for _, o := range p.objects {
		meta := o.(metav1.Object)
		if kindOf(o) == kind && meta.GetNamespace() == namespace && meta.GetName() == name {
			return true
		}
	}
	return false
}

func kindOf(o runtime.Object) string {
	switch o.(type) {
	case *corev1.Namespace:
		return "Namespace"
	case *corev1.Service:
		return "Service"
	case *corev1.Pod:
		return "Pod"
	case *discoveryv1.EndpointSlice:
		return "EndpointSlice"
	case *corev1.ServiceAccount:
		return "ServiceAccount"
	}
	return o.GetObjectKind().GroupVersionKind().Kind
}
