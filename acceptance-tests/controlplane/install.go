package controlplane

// Installing Istio as users do: istioctl renders it, the harness applies what
// it rendered (like `istioctl install`, server-side apply as field manager
// istio-operator), except the objects that only a kubelet could act on.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"

	admissionv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/restmapper"
)

var (
	getOpts = metav1.GetOptions{}
	crdGVR  = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
)

// skippedKinds are rendered but not applied: each only acts through Pods, and
// no kubelet runs here. README.md "Local control plane" lists the same.
var skippedKinds = map[string]string{
	"HorizontalPodAutoscaler": "it would scale up a Deployment whose Pods cannot run here",
	"PodDisruptionBudget":     "it protects Pods that do not exist",
}

// withoutPods are applied as rendered but with `spec.replicas: 0`: the object is
// what a real cluster shows (the provider reads istiod's env from its
// Deployment), and its Pods would need a kubelet. README.md "Local control
// plane" lists the same.
var withoutPods = map[string]string{
	"Deployment": "its Pods need a kubelet: istiod runs as a local process with the Deployment's args and env (istiod.go), the east-west gateway's Envoy is the gateway process (gateway.go), the ingress gateway does not run",
}

// fieldManager is the one `istioctl install` applies with
// (operator/pkg/install/install.go).
const fieldManager = "istio-operator"

// rendered is what istioctl rendered for one step of the install, kept in
// RUN_DIR/install/<step>.yaml.
type rendered struct {
	step    string
	objects []*unstructured.Unstructured
	// owner are the labels istioctl install sets on every object it applies
	// (operator/pkg/install/install.go getOwnerLabels), except
	// operator.istio.io/component: istioctl knows each object's component,
	// the flat output of manifest generate does not say it.
	owner map[string]string
}

// ownerLabels are an install's owner labels: IstioOperator name and
// namespace (when set), revision, and istioctl's version.
func ownerLabels(name, namespace, rev, version string) map[string]string {
	labels := map[string]string{
		"operator.istio.io/managed": "Reconcile",
		"operator.istio.io/version": version,
		"istio.io/rev":              rev,
	}
	if name != "" {
		labels["install.operator.istio.io/owning-resource"] = name
	}
	if namespace != "" {
		labels["install.operator.istio.io/owning-resource-namespace"] = namespace
	}
	return labels
}

// istioctl runs the istioctl of tools.env and returns its stdout; each run
// is logged in RUN_DIR/istioctl.log.
func (cp *ControlPlane) istioctl(ctx context.Context, args ...string) ([]byte, error) {
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, cp.istioctlBin, args...)
	cmd.Env = baseEnv()
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if log, openErr := os.OpenFile(filepath.Join(cp.RunDir, "istioctl.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644); openErr == nil {
		fmt.Fprintf(log, "# istioctl %s (exit: %v)\n%s\n", strings.Join(args, " "), err, stderr.String())
		log.Close()
	}
	if err != nil {
		return stdout.Bytes(), fmt.Errorf("istioctl %s: %w\n%s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.Bytes(), nil
}

// Istioctl runs istioctl (TFPI_ISTIOCTL) against this control plane with the
// admin kubeconfig and returns its stdout; stderr is in the error.
func (cp *ControlPlane) Istioctl(ctx context.Context, args ...string) ([]byte, error) {
	return cp.istioctl(ctx, append(args, "--kubeconfig", cp.Kubeconfig)...)
}

// renderInstalls renders every revision's install and the east-west gateway
// with istioctl. It needs no cluster, so it runs while the cluster starts.
func (cp *ControlPlane) renderInstalls(ctx context.Context) ([]rendered, error) {
	version, err := cp.istioctlVersion(ctx)
	if err != nil {
		return nil, err
	}
	var out []rendered
	for _, rev := range cp.profile.Revisions {
		r, err := cp.render(ctx, "istio-"+rev, cp.profile.installArgs(rev)...)
		if err != nil {
			return nil, err
		}
		// The profiles' IstioOperator has no name and the Istio namespace.
		r.owner = ownerLabels("", cp.profile.IstioNamespace(), rev, version)
		out = append(out, r)
	}
	script := filepath.Join(cp.samplesDir, "multicluster", "gen-eastwest-gateway.sh")
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "bash", append([]string{script}, cp.profile.eastWestGatewayArgs()...)...)
	cmd.Stderr = &stderr
	iop, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w\n%s", script, strings.Join(cp.profile.eastWestGatewayArgs(), " "), err, stderr.String())
	}
	iopFile := filepath.Join(cp.RunDir, "install", "eastwest-gateway-iop.yaml")
	if err := os.WriteFile(iopFile, iop, 0o644); err != nil {
		return nil, err
	}
	gatewayArgs := []string{"manifest", "generate", "-f", iopFile}
	if ns := cp.profile.Namespace; ns != "" {
		// The guide pipes the script into istioctl install; in another
		// namespace that install needs the same value as Istio's.
		gatewayArgs = append(gatewayArgs, "--set", "values.global.istioNamespace="+ns)
	}
	r, err := cp.render(ctx, "eastwest-gateway", gatewayArgs...)
	if err != nil {
		return nil, err
	}
	// gen-eastwest-gateway.sh names its IstioOperator "eastwest".
	r.owner = ownerLabels("eastwest", "", cp.profile.DefaultRevision(), version)
	return append(out, r), nil
}

// istioctlVersion is istioctl's own version (the label value istioctl
// install uses).
func (cp *ControlPlane) istioctlVersion(ctx context.Context) (string, error) {
	out, err := cp.istioctl(ctx, "version", "--remote=false", "-o", "json")
	if err != nil {
		return "", err
	}
	var v struct {
		ClientVersion struct{ Version string } `json:"clientVersion"`
	}
	if err := json.Unmarshal(out, &v); err != nil {
		return "", fmt.Errorf("istioctl version: %w", err)
	}
	return v.ClientVersion.Version, nil
}

// render runs `istioctl <args>` and parses its output.
func (cp *ControlPlane) render(ctx context.Context, step string, args ...string) (rendered, error) {
	out, err := cp.istioctl(ctx, args...)
	if err != nil {
		return rendered{}, err
	}
	if err := os.WriteFile(filepath.Join(cp.RunDir, "install", step+".yaml"), out, 0o644); err != nil {
		return rendered{}, err
	}
	objects, err := parseObjects(out)
	if err != nil {
		return rendered{}, fmt.Errorf("parsing the output of istioctl %s: %w", strings.Join(args, " "), err)
	}
	return rendered{step: step, objects: objects}, nil
}

// parseObjects reads every object of a multi-document YAML stream.
func parseObjects(raw []byte) ([]*unstructured.Unstructured, error) {
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(raw), 4096)
	var out []*unstructured.Unstructured
	for {
		var obj map[string]any
		if err := dec.Decode(&obj); errors.Is(err, io.EOF) {
			return out, nil
		} else if err != nil {
			return nil, err
		}
		if len(obj) > 0 && obj["kind"] != nil {
			out = append(out, &unstructured.Unstructured{Object: obj})
		}
	}
}

// createIstioNamespace does what istioctl install does before applying:
// create the Istio namespace, labelled with the network when values.global.network
// is set (operator/pkg/util/k8s.go CreateNamespace).
func (cp *ControlPlane) createIstioNamespace(ctx context.Context) error {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: cp.profile.IstioNamespace(), Labels: map[string]string{}}}
	if cp.profile.Network != "" {
		ns.Labels["topology.istio.io/network"] = cp.profile.Network
	}
	_, err := cp.client.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{FieldManager: fieldManager})
	if apierrors.IsAlreadyExists(err) {
		return nil
	}
	return err
}

// applyRendered applies the objects of each step: CRDs first (and waits
// until they are Established), then everything else, skipping
// skippedKinds. It records what it skipped in cp.Skipped.
func (cp *ControlPlane) applyRendered(ctx context.Context, steps []rendered, apiserver *process) error {
	var crds, rest []*unstructured.Unstructured
	for _, step := range steps {
		for _, obj := range step.objects {
			labels := obj.GetLabels()
			if labels == nil {
				labels = map[string]string{}
			}
			for k, v := range step.owner {
				labels[k] = v
			}
			obj.SetLabels(labels)
			switch kind := obj.GetKind(); {
			case kind == "CustomResourceDefinition":
				crds = append(crds, obj)
			case skippedKinds[kind] != "":
				cp.Skipped = append(cp.Skipped, fmt.Sprintf("%s %s/%s (%s)", kind, obj.GetNamespace(), obj.GetName(), step.step))
			case withoutPods[kind] != "":
				obj = obj.DeepCopy()
				if err := unstructured.SetNestedField(obj.Object, int64(0), "spec", "replicas"); err != nil {
					return err
				}
				rest = append(rest, obj)
			default:
				rest = append(rest, obj)
			}
		}
	}
	if len(crds) > 0 {
		if err := cp.applyObjects(ctx, crds); err != nil {
			return err
		}
		if err := cp.waitEstablished(ctx, crds, apiserver); err != nil {
			return err
		}
	}
	return cp.applyObjects(ctx, rest)
}

// applyObjects server-side applies objects; a namespaced object without a
// namespace goes to the Istio namespace (`kubectl apply -n istio-system`).
func (cp *ControlPlane) applyObjects(ctx context.Context, objects []*unstructured.Unstructured) error {
	dyn, err := dynamic.NewForConfig(cp.rest)
	if err != nil {
		return err
	}
	groups, err := restmapper.GetAPIGroupResources(cp.client.Discovery())
	if err != nil {
		return err
	}
	mapper := restmapper.NewDiscoveryRESTMapper(groups)
	for _, obj := range objects {
		gvk := obj.GroupVersionKind()
		mapping, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		if err != nil {
			return fmt.Errorf("%s %s: %w", gvk.Kind, obj.GetName(), err)
		}
		var ri dynamic.ResourceInterface = dyn.Resource(mapping.Resource)
		if mapping.Scope.Name() == "namespace" {
			if obj.GetNamespace() == "" {
				obj.SetNamespace(cp.profile.IstioNamespace())
			}
			ri = dyn.Resource(mapping.Resource).Namespace(obj.GetNamespace())
		}
		if _, err := ri.Apply(ctx, obj.GetName(), obj, metav1.ApplyOptions{FieldManager: fieldManager, Force: true}); err != nil {
			return fmt.Errorf("applying %s %s/%s: %w", gvk.Kind, obj.GetNamespace(), obj.GetName(), err)
		}
	}
	return nil
}

// waitEstablished waits until every CRD is Established.
func (cp *ControlPlane) waitEstablished(ctx context.Context, crds []*unstructured.Unstructured, apiserver *process) error {
	dyn, err := dynamic.NewForConfig(cp.rest)
	if err != nil {
		return err
	}
	return cp.waitFor(ctx, apiserver, fmt.Sprintf("%d Istio CRDs Established", len(crds)), func() error {
		for _, crd := range crds {
			u, err := dyn.Resource(crdGVR).Get(ctx, crd.GetName(), getOpts)
			if err != nil {
				return err
			}
			if !hasCondition(u, "Established", "True") {
				return fmt.Errorf("CRD %s not Established yet", crd.GetName())
			}
		}
		return nil
	})
}

func hasCondition(u *unstructured.Unstructured, typ, status string) bool {
	conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	for _, c := range conds {
		m, _ := c.(map[string]any)
		if m["type"] == typ && m["status"] == status {
			return true
		}
	}
	return false
}

// setDefaultTag does what `istioctl install` does on a cluster without
// Istio (operator/pkg/webhook/webhook.go WebhooksToDeploy): it points the
// `default` revision tag at the first install's revision, with istioctl's
// own `tag set` (which also applies the tag's webhooks and Service and
// deactivates the overlapping injector webhooks, istioctl/pkg/tag).
// istioctl install goes on when the tag cannot be created; so does this,
// saying so in the progress output.
func (cp *ControlPlane) setDefaultTag(ctx context.Context) {
	rev := cp.profile.DefaultRevision()
	if _, err := cp.Istioctl(ctx, "tag", "set", "default", "--revision", rev, "--overwrite", "--skip-confirmation",
		"--istioNamespace", cp.profile.IstioNamespace()); err != nil {
		cp.progress("no default revision tag: %v (istioctl install goes on without it too)", err)
	}
}

// exposeIstiod is the VM guide's last install step: the Gateway and
// VirtualService that route istiod's ports through the east-west gateway
// (samples/multicluster/expose-istiod.yaml; for a revision
// expose-istiod-rev.yaml.tmpl with {{.Revision}} replaced, as the guide's sed
// does), and for a multi-network mesh expose-services.yaml. Applied after
// istiod's webhook is live, so istiod validates them.
func (cp *ControlPlane) exposeIstiod() (rendered, error) {
	dir := filepath.Join(cp.samplesDir, "multicluster")
	var all []byte
	for _, rev := range cp.profile.Revisions {
		file, replace := "expose-istiod.yaml", ""
		if rev != "default" {
			file, replace = "expose-istiod-rev.yaml.tmpl", rev
		}
		raw, err := os.ReadFile(filepath.Join(dir, file))
		if err != nil {
			return rendered{}, err
		}
		raw = bytes.ReplaceAll(raw, []byte("{{.Revision}}"), []byte(replace))
		// The samples name istiod in istio-system; in another namespace the
		// user edits the host as the guide's sed edits the revision.
		raw = bytes.ReplaceAll(raw, []byte(".istio-system.svc"), []byte("."+cp.profile.IstioNamespace()+".svc"))
		all = append(all, raw...)
		all = append(all, "\n---\n"...)
	}
	if cp.profile.Network != "" {
		raw, err := os.ReadFile(filepath.Join(dir, "expose-services.yaml"))
		if err != nil {
			return rendered{}, err
		}
		all = append(all, raw...)
	}
	if err := os.WriteFile(filepath.Join(cp.RunDir, "install", "expose-istiod.yaml"), all, 0o644); err != nil {
		return rendered{}, err
	}
	objects, err := parseObjects(all)
	return rendered{step: "expose-istiod", objects: objects}, err
}

// install puts the rendered installs into the cluster as `istioctl install`
// does (namespace, CRDs, everything else, then the `default` revision tag),
// and gives the east-west gateway's Service its load balancer address.
func (cp *ControlPlane) install(ctx context.Context, steps []rendered, apiserver *process) error {
	cp.progress("applying the rendered install (skipping %s; %s without Pods)", strings.Join(sortedNames(skippedKinds), ", "), strings.Join(sortedNames(withoutPods), ", "))
	if err := cp.createIstioNamespace(ctx); err != nil {
		return err
	}
	if err := cp.applyRendered(ctx, steps, apiserver); err != nil {
		return err
	}
	cp.setDefaultTag(ctx)
	return cp.assignLoadBalancer(ctx)
}

// assignLoadBalancer does what a cloud's load balancer controller does for
// the istio-eastwestgateway Service: it reports the address, here the
// gateway process's IP, or the profile's DNS name.
func (cp *ControlPlane) assignLoadBalancer(ctx context.Context) error {
	services := cp.client.CoreV1().Services(cp.profile.IstioNamespace())
	svc, err := services.Get(ctx, eastWestGatewayService, getOpts)
	if err != nil {
		return fmt.Errorf("the rendered east-west gateway: %w", err)
	}
	ingress := corev1.LoadBalancerIngress{IP: cp.gatewayIP}
	if cp.profile.GatewayHostname != "" {
		ingress = corev1.LoadBalancerIngress{Hostname: cp.profile.GatewayHostname}
	}
	svc.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{ingress}
	if _, err := services.UpdateStatus(ctx, svc, metav1.UpdateOptions{FieldManager: "tfpi-load-balancer"}); err != nil {
		return fmt.Errorf("Service %s status (load balancer %+v): %w", eastWestGatewayService, ingress, err)
	}
	return nil
}

// eastWestGatewayService is the Service gen-eastwest-gateway.sh installs.
const eastWestGatewayService = "istio-eastwestgateway"

// waitForWebhooks waits until istiod has made every Istio validating
// webhook live, as its webhook controller does
// (pkg/webhooks/validation/controller): caBundle = istiod's root
// certificate, and failurePolicy Fail once a dry-run of an invalid Gateway
// was denied through kube-apiserver — which proves the call reaches istiod.
func (cp *ControlPlane) waitForWebhooks(ctx context.Context, rootCert string) error {
	webhooks := cp.client.AdmissionregistrationV1().ValidatingWebhookConfigurations()
	list, err := webhooks.List(ctx, metav1.ListOptions{LabelSelector: "istio.io/rev"})
	if err != nil {
		return err
	}
	var names []string
	for _, w := range list.Items {
		names = append(names, w.Name)
	}
	if len(names) == 0 {
		return errors.New("the install has no ValidatingWebhookConfiguration labelled istio.io/rev")
	}
	sort.Strings(names)
	cp.setEnv("ISTIO_VALIDATING_WEBHOOKS", strings.Join(names, ","))
	return cp.waitFor(ctx, cp.istiods[0].process, "istiod's validating webhooks live ("+strings.Join(names, ", ")+")", func() error {
		for _, name := range names {
			w, err := webhooks.Get(ctx, name, getOpts)
			if err != nil {
				return err
			}
			for _, hook := range w.Webhooks {
				if string(hook.ClientConfig.CABundle) != rootCert {
					return fmt.Errorf("%s: webhook %s has no caBundle of istiod's root certificate yet", name, hook.Name)
				}
				if hook.FailurePolicy == nil || *hook.FailurePolicy != admissionv1.Fail {
					return fmt.Errorf("%s: webhook %s is not failurePolicy Fail yet (istiod switches once its dry run is denied)", name, hook.Name)
				}
			}
		}
		return nil
	})
}

func sortedNames[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
