package controlplane

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/intstr"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/dynamic"
)

var (
	getOpts    = metav1.GetOptions{}
	createOpts = metav1.CreateOptions{FieldManager: "tfpi-controlplane"}
	crdGVR     = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
)

// applyCRDs creates every CustomResourceDefinition in Istio's generated CRD
// file and waits until all are Established.
func (cp *ControlPlane) applyCRDs(ctx context.Context, file string, apiserver *process) error {
	raw, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	dyn, err := dynamic.NewForConfig(cp.rest)
	if err != nil {
		return err
	}
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(raw), 4096)
	var names []string
	for {
		var obj map[string]any
		if err := dec.Decode(&obj); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return fmt.Errorf("parsing %s: %w", file, err)
		}
		if obj == nil || obj["kind"] != "CustomResourceDefinition" {
			continue
		}
		u := &unstructured.Unstructured{Object: obj}
		if _, err := dyn.Resource(crdGVR).Create(ctx, u, createOpts); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("creating CRD %s: %w", u.GetName(), err)
		}
		names = append(names, u.GetName())
	}
	if len(names) == 0 {
		return fmt.Errorf("no CustomResourceDefinition in %s", file)
	}
	return cp.waitFor(ctx, apiserver, fmt.Sprintf("%d Istio CRDs Established", len(names)), func() error {
		for _, name := range names {
			u, err := dyn.Resource(crdGVR).Get(ctx, name, getOpts)
			if err != nil {
				return err
			}
			conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
			established := false
			for _, c := range conds {
				m, _ := c.(map[string]any)
				if m["type"] == "Established" && m["status"] == "True" {
					established = true
				}
			}
			if !established {
				return fmt.Errorf("CRD %s not Established yet", name)
			}
		}
		return nil
	})
}

// bootstrapIstio creates what an Istio installation (base + istiod charts)
// has in the cluster before istiod starts: the namespace, mesh and injector
// ConfigMaps, istiod's ServiceAccount and RBAC, and the east-west gateway
// Service with an external IP.
func (cp *ControlPlane) bootstrapIstio(ctx context.Context) error {
	c := cp.client
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		Name:   IstioNamespace,
		Labels: map[string]string{"topology.istio.io/network": cp.opts.Network},
	}}
	if _, err := c.CoreV1().Namespaces().Create(ctx, ns, createOpts); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	for _, rev := range cp.opts.Revisions {
		if err := cp.bootstrapRevision(ctx, rev); err != nil {
			return err
		}
	}
	return cp.createEastWestGateway(ctx)
}

func (cp *ControlPlane) bootstrapRevision(ctx context.Context, rev string) error {
	c := cp.client
	name := istiodName(rev) // istiod or istiod-<rev>
	revision := rev
	suffix := ""
	if rev != "default" && rev != "" {
		suffix = "-" + rev
	} else {
		revision = "default"
	}
	labels := map[string]string{"app": "istiod", "istio.io/rev": revision}

	mesh := fmt.Sprintf(`# Written by acceptance-tests/controlplane (like the istiod chart's configmap.yaml).
trustDomain: cluster.local
rootNamespace: %[1]s
enablePrometheusMerge: true
defaultConfig:
  discoveryAddress: %[2]s.%[1]s.svc:15012
  proxyMetadata: {}
`, IstioNamespace, name)
	values, err := json.Marshal(map[string]any{
		"revision": strings.TrimPrefix(suffix, "-"),
		"global": map[string]any{
			"istioNamespace":    IstioNamespace,
			"network":           cp.opts.Network,
			"meshID":            "",
			"pilotCertProvider": "istiod",
			"caAddress":         "",
			"jwtPolicy":         "third-party-jwt",
			"multiCluster": map[string]any{
				"clusterName": cp.opts.ClusterID,
				"enabled":     false,
			},
		},
	})
	if err != nil {
		return err
	}
	// No kubelet runs here, so no pod is ever injected: injection is off and
	// the template is a placeholder. istiod still serves its webhook.
	injectConfig := "policy: disabled\nalwaysInjectSelector: []\nneverInjectSelector: []\ninjectedAnnotations: {}\ndefaultTemplates: [sidecar]\ntemplates:\n  sidecar: |\n    metadata:\n      annotations: {}\n"

	objs := []*corev1.ConfigMap{
		{ObjectMeta: metav1.ObjectMeta{Name: "istio" + suffix, Namespace: IstioNamespace, Labels: labels},
			Data: map[string]string{"mesh": mesh, "meshNetworks": "networks: {}\n"}},
		{ObjectMeta: metav1.ObjectMeta{Name: "istio-sidecar-injector" + suffix, Namespace: IstioNamespace, Labels: labels},
			Data: map[string]string{"values": string(values), "config": injectConfig}},
	}
	for _, cm := range objs {
		if _, err := c.CoreV1().ConfigMaps(IstioNamespace).Create(ctx, cm, createOpts); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("ConfigMap %s: %w", cm.Name, err)
		}
	}

	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: IstioNamespace, Labels: labels}}
	if _, err := c.CoreV1().ServiceAccounts(IstioNamespace).Create(ctx, sa, createOpts); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	subject := []rbacv1.Subject{{Kind: "ServiceAccount", Name: name, Namespace: IstioNamespace}}
	for _, cr := range []*rbacv1.ClusterRole{
		{ObjectMeta: metav1.ObjectMeta{Name: "istiod-clusterrole" + suffix + "-" + IstioNamespace, Labels: labels}, Rules: istiodClusterRules()},
		{ObjectMeta: metav1.ObjectMeta{Name: "istiod-gateway-controller" + suffix + "-" + IstioNamespace, Labels: labels}, Rules: istiodGatewayControllerRules()},
	} {
		if _, err := c.RbacV1().ClusterRoles().Create(ctx, cr, createOpts); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("ClusterRole %s: %w", cr.Name, err)
		}
		crb := &rbacv1.ClusterRoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: cr.Name, Labels: labels},
			RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: cr.Name},
			Subjects:   subject,
		}
		if _, err := c.RbacV1().ClusterRoleBindings().Create(ctx, crb, createOpts); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("ClusterRoleBinding %s: %w", crb.Name, err)
		}
	}
	role := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: IstioNamespace, Labels: labels}, Rules: istiodNamespaceRules()}
	if _, err := c.RbacV1().Roles(IstioNamespace).Create(ctx, role, createOpts); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("Role %s: %w", role.Name, err)
	}
	rb := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: IstioNamespace, Labels: labels},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: name},
		Subjects:   subject,
	}
	if _, err := c.RbacV1().RoleBindings(IstioNamespace).Create(ctx, rb, createOpts); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("RoleBinding %s: %w", rb.Name, err)
	}
	return nil
}

func rule(groups, resources, verbs []string) rbacv1.PolicyRule {
	return rbacv1.PolicyRule{APIGroups: groups, Resources: resources, Verbs: verbs}
}

var (
	readVerbs = []string{"get", "list", "watch"}
	allVerbs  = []string{"get", "list", "watch", "create", "update", "patch", "delete"}
	istioAPI  = []string{"config.istio.io", "security.istio.io", "networking.istio.io", "authentication.istio.io", "rbac.istio.io", "telemetry.istio.io", "extensions.istio.io"}
)

// istiodClusterRules grants what istiod's cluster role in the istiod chart
// grants (istio-control/istio-discovery/templates/clusterrole.yaml, default
// values).
func istiodClusterRules() []rbacv1.PolicyRule {
	return []rbacv1.PolicyRule{
		rule([]string{"admissionregistration.k8s.io"}, []string{"mutatingwebhookconfigurations"}, []string{"get", "list", "watch", "update", "patch"}),
		rule([]string{"admissionregistration.k8s.io"}, []string{"validatingwebhookconfigurations"}, []string{"get", "list", "watch", "update"}),
		rule(istioAPI, []string{"*"}, readVerbs),
		rule([]string{"networking.istio.io"}, []string{"workloadentries", "workloadentries/status", "serviceentries/status"}, allVerbs),
		rule([]string{"security.istio.io"}, []string{"authorizationpolicies/status"}, allVerbs),
		rule([]string{""}, []string{"services/status"}, allVerbs),
		rule([]string{"apiextensions.k8s.io"}, []string{"customresourcedefinitions"}, readVerbs),
		rule([]string{""}, []string{"pods", "nodes", "services", "namespaces", "endpoints"}, readVerbs),
		rule([]string{"discovery.k8s.io"}, []string{"endpointslices"}, readVerbs),
		rule([]string{"networking.k8s.io"}, []string{"ingresses", "ingressclasses"}, readVerbs),
		rule([]string{"networking.k8s.io"}, []string{"ingresses/status"}, []string{"*"}),
		rule([]string{""}, []string{"configmaps"}, []string{"create", "get", "list", "watch", "update"}),
		rule([]string{"authentication.k8s.io"}, []string{"tokenreviews"}, []string{"create"}),
		rule([]string{"authorization.k8s.io"}, []string{"subjectaccessreviews"}, []string{"create"}),
		rule([]string{"gateway.networking.k8s.io", "gateway.networking.x-k8s.io"}, []string{"*"}, readVerbs),
		rule([]string{"gateway.networking.x-k8s.io"}, []string{"xbackendtrafficpolicies/status"}, []string{"update", "patch"}),
		rule([]string{"gateway.networking.k8s.io"}, []string{
			"backendtlspolicies/status", "gatewayclasses/status", "gateways/status", "grpcroutes/status",
			"httproutes/status", "referencegrants/status", "tcproutes/status", "tlsroutes/status",
			"udproutes/status", "listenersets/status",
		}, []string{"update", "patch"}),
		rule([]string{"gateway.networking.k8s.io"}, []string{"gatewayclasses"}, []string{"create", "update", "patch", "delete"}),
		rule([]string{"inference.networking.k8s.io"}, []string{"inferencepools"}, readVerbs),
		rule([]string{"inference.networking.k8s.io"}, []string{"inferencepools/status"}, []string{"update", "patch"}),
		rule([]string{""}, []string{"secrets"}, readVerbs),
		rule([]string{"multicluster.x-k8s.io"}, []string{"serviceexports"}, []string{"get", "watch", "list", "create", "delete"}),
		rule([]string{"multicluster.x-k8s.io"}, []string{"serviceimports"}, readVerbs),
	}
}

// istiodGatewayControllerRules mirrors the chart's istiod-gateway-controller
// cluster role.
func istiodGatewayControllerRules() []rbacv1.PolicyRule {
	return []rbacv1.PolicyRule{
		rule([]string{"apps"}, []string{"deployments"}, allVerbs),
		rule([]string{"autoscaling"}, []string{"horizontalpodautoscalers"}, allVerbs),
		rule([]string{"policy"}, []string{"poddisruptionbudgets"}, allVerbs),
		rule([]string{""}, []string{"services", "serviceaccounts"}, allVerbs),
	}
}

// istiodNamespaceRules mirrors the chart's istiod Role in istio-system.
func istiodNamespaceRules() []rbacv1.PolicyRule {
	return []rbacv1.PolicyRule{
		rule([]string{"networking.istio.io"}, []string{"gateways"}, []string{"create"}),
		rule([]string{""}, []string{"secrets"}, []string{"create", "get", "watch", "list", "update", "delete"}),
		rule([]string{""}, []string{"configmaps"}, []string{"delete"}),
		rule([]string{"coordination.k8s.io"}, []string{"leases"}, []string{"get", "update", "patch", "create"}),
	}
}

// createEastWestGateway creates the istio-eastwestgateway Service (as
// samples/multicluster/gen-eastwest-gateway.sh would) and gives it an
// external IP, as a cloud load balancer controller would.
func (cp *ControlPlane) createEastWestGateway(ctx context.Context) error {
	c := cp.client
	labels := map[string]string{
		"istio":                     "eastwestgateway",
		"app":                       "istio-eastwestgateway",
		"topology.istio.io/network": cp.opts.Network,
	}
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "istio-eastwestgateway", Namespace: IstioNamespace, Labels: labels},
		Spec: corev1.ServiceSpec{
			Type:     corev1.ServiceTypeLoadBalancer,
			Selector: map[string]string{"istio": "eastwestgateway", "app": "istio-eastwestgateway"},
			Ports: []corev1.ServicePort{
				{Name: "status-port", Port: 15021, TargetPort: intstr.FromInt32(15021)},
				{Name: "tls", Port: 15443, TargetPort: intstr.FromInt32(15443)},
				{Name: "tls-istiod", Port: 15012, TargetPort: intstr.FromInt32(15012)},
				{Name: "tls-webhook", Port: 15017, TargetPort: intstr.FromInt32(15017)},
			},
		},
	}
	created, err := c.CoreV1().Services(IstioNamespace).Create(ctx, svc, createOpts)
	if err != nil {
		return fmt.Errorf("Service istio-eastwestgateway: %w", err)
	}
	created.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: cp.opts.GatewayIP}}
	if _, err := c.CoreV1().Services(IstioNamespace).UpdateStatus(ctx, created, metav1.UpdateOptions{FieldManager: "tfpi-controlplane"}); err != nil {
		return fmt.Errorf("Service istio-eastwestgateway status (external IP %s): %w", cp.opts.GatewayIP, err)
	}
	return nil
}
