package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"k8s.io/apiextensions-apiserver/pkg/apis/apiextensions"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	structuralschema "k8s.io/apiextensions-apiserver/pkg/apiserver/schema"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/cel"
	structuraldefaulting "k8s.io/apiextensions-apiserver/pkg/apiserver/schema/defaulting"
	structurallisttype "k8s.io/apiextensions-apiserver/pkg/apiserver/schema/listtype"
	structuralpruning "k8s.io/apiextensions-apiserver/pkg/apiserver/schema/pruning"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/validation"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	kubeyaml "k8s.io/apimachinery/pkg/util/yaml"
	celconfig "k8s.io/apiserver/pkg/apis/cel"
)

// The API server's part of admitting a Gateway API object: the CRDs' defaults (a match without path is
// PathPrefix "/", a header match without type is Exact, a backendRef's weight is 1, parentRefs get group and
// kind), then their OpenAPI schema, list-type and CEL rules, and unknown fields (kubectl apply's strict field
// validation). Istio's Gateway API controller reads objects as the API server stored them, defaults included
// (it dereferences them), so the oracle admits each Gateway API object like this before handing it to Istio.
// The CRDs are the pinned Gateway API release's standard channel (GATEWAY_API_VERSION in versions.env), which
// build.sh puts beside the binary (crds/); ISTIO_ORACLE_CRDS names another directory. This follows Istio's own
// test validator (pkg/config/crd/validator.go), which also returns the defaulted object here.

type crdSchema struct {
	validator  validation.SchemaCreateValidator
	structural *structuralschema.Structural
	cel        *cel.Validator
}

type admission struct {
	dir     string
	schemas map[schema.GroupVersionKind]*crdSchema
	err     error
}

var crdAdmission *admission

func crdDir() string {
	if d := os.Getenv("ISTIO_ORACLE_CRDS"); d != "" {
		return d
	}
	exe, err := os.Executable()
	if err != nil {
		return "crds"
	}
	if resolved, err := filepath.EvalSymlinks(exe); err == nil {
		exe = resolved
	}
	return filepath.Join(filepath.Dir(exe), "crds")
}

func loadAdmission() *admission {
	if crdAdmission != nil {
		return crdAdmission
	}
	a := &admission{dir: crdDir(), schemas: map[schema.GroupVersionKind]*crdSchema{}}
	crdAdmission = a
	files, err := filepath.Glob(filepath.Join(a.dir, "*.yaml"))
	if err == nil && len(files) == 0 {
		err = fmt.Errorf("no CRD files in %s (build.sh copies the pinned Gateway API CRDs there; or set ISTIO_ORACLE_CRDS)", a.dir)
	}
	sort.Strings(files)
	for _, f := range files {
		if err != nil {
			break
		}
		err = a.addFile(f)
	}
	a.err = err
	return a
}

func (a *admission) addFile(file string) error {
	data, err := os.Open(file)
	if err != nil {
		return err
	}
	defer data.Close()
	dec := kubeyaml.NewYAMLOrJSONDecoder(data, 512*1024)
	for {
		un := &unstructured.Unstructured{}
		if err := dec.Decode(un); err == io.EOF {
			return nil
		} else if err != nil {
			return fmt.Errorf("%s: %v", file, err)
		}
		if un.GroupVersionKind() != apiextensionsv1.SchemeGroupVersion.WithKind("CustomResourceDefinition") {
			continue // the release's ValidatingAdmissionPolicy (safe upgrades) is not about single objects
		}
		v1 := apiextensionsv1.CustomResourceDefinition{}
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(un.UnstructuredContent(), &v1); err != nil {
			return fmt.Errorf("%s: %v", file, err)
		}
		crd := apiextensions.CustomResourceDefinition{}
		if err := apiextensionsv1.Convert_v1_CustomResourceDefinition_To_apiextensions_CustomResourceDefinition(&v1, &crd, nil); err != nil {
			return fmt.Errorf("%s: %v", file, err)
		}
		for _, ver := range crd.Spec.Versions {
			// The conversion moves a schema every version shares to spec.validation.
			sch := ver.Schema
			if sch == nil {
				sch = crd.Spec.Validation
			}
			if sch == nil {
				continue
			}
			validator, _, err := validation.NewSchemaValidator(sch.OpenAPIV3Schema)
			if err != nil {
				return fmt.Errorf("%s %s: %v", crd.Name, ver.Name, err)
			}
			structural, err := structuralschema.NewStructural(sch.OpenAPIV3Schema)
			if err != nil {
				return fmt.Errorf("%s %s: %v", crd.Name, ver.Name, err)
			}
			gvk := schema.GroupVersionKind{Group: crd.Spec.Group, Version: ver.Name, Kind: crd.Spec.Names.Kind}
			a.schemas[gvk] = &crdSchema{validator: validator, structural: structural,
				cel: cel.NewValidator(structural, true, celconfig.PerCallLimit)}
		}
	}
}

// admit defaults and validates one object as the API server would; it returns the stored form (JSON).
func (a *admission) admit(js []byte, gvk schema.GroupVersionKind) ([]byte, []string) {
	if a.err != nil {
		return nil, []string{"Gateway API CRDs: " + a.err.Error()}
	}
	s, ok := a.schemas[gvk]
	if !ok {
		return nil, []string{fmt.Sprintf("no CustomResourceDefinition for %s in %s: the API server would refuse it (not in the Gateway API standard channel)", gvk, a.dir)}
	}
	// Unstructured's own decoder reads whole numbers as int64, as the API server does (CEL rules need it).
	un := &unstructured.Unstructured{}
	if err := un.UnmarshalJSON(js); err != nil {
		return nil, []string{err.Error()}
	}
	structuraldefaulting.Default(un.Object, s.structural)
	var errs []string
	for _, e := range validation.ValidateCustomResource(nil, un.Object, s.validator) {
		errs = append(errs, "the API server refuses it: "+e.Error())
	}
	for _, e := range structurallisttype.ValidateListSetsAndMaps(nil, s.structural, un.Object) {
		errs = append(errs, "the API server refuses it: "+e.Error())
	}
	unknown := structuralpruning.PruneWithOptions(un.DeepCopy().Object, s.structural, false,
		structuralschema.UnknownFieldPathOptions{TrackUnknownFieldPaths: true})
	for _, path := range unknown {
		if !strings.HasPrefix(path, "metadata.") {
			errs = append(errs, fmt.Sprintf("the API server refuses it: unknown field %q (strict field validation)", path))
		}
	}
	if s.cel != nil {
		celErrs, _ := s.cel.Validate(context.Background(), nil, s.structural, un.Object, nil, celconfig.RuntimeCELCostBudget)
		for _, e := range celErrs {
			errs = append(errs, "the API server refuses it: "+e.Error())
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	out, err := json.Marshal(un.Object)
	if err != nil {
		return nil, []string{err.Error()}
	}
	return out, nil
}
