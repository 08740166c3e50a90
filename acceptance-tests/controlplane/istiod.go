package controlplane

// istiod runs as a local process with exactly the args and env of the
// rendered istiod Deployment's container "discovery". What a kubelet would
// resolve is resolved here as the kubelet does (podFields, resolveEnv); what
// the harness adds beyond the Deployment is the one table outOfCluster.

import (
	"context"
	"fmt"
	"math"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/labels"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"

	"terraform-provider-istio/acceptance-tests/ports"
)

// istiod is one rendered istiod Deployment and where its process listens.
type istiod struct {
	deployment *appsv1.Deployment
	revision   string
	// listen maps each container port of the Deployment to the loopback
	// address the process listens on instead.
	listen     map[int32]string
	kubeconfig string
	// env is the resolved environment of the process, without baseEnv.
	env     map[string]string
	process *process
}

func (d *istiod) name() string { return d.deployment.Name }

// container is the Deployment's "discovery" container.
func (d *istiod) container() (*corev1.Container, error) {
	for i, c := range d.deployment.Spec.Template.Spec.Containers {
		if c.Name == "discovery" {
			return &d.deployment.Spec.Template.Spec.Containers[i], nil
		}
	}
	return nil, fmt.Errorf("Deployment %s has no container \"discovery\"", d.deployment.Name)
}

// selectedBy reports whether a Service selector matches istiod's Pods.
func (d *istiod) selectedBy(selector map[string]string) bool {
	return len(selector) > 0 && labels.SelectorFromSet(selector).Matches(labels.Set(d.deployment.Spec.Template.Labels))
}

// outOfCluster is everything istiod gets from the harness beyond the
// rendered Deployment, with the reason; README.md "Local control plane"
// shows the same table and istiod's log starts with it. Flags come after the
// rendered args, so they win (the last value of a flag counts); fieldRef
// rows are the values the kubelet would give those fields of the Pod.
var outOfCluster = []struct {
	flag, env, fieldRef string
	value               func(d *istiod) string
	why                 string
}{
	{env: "KUBECONFIG", value: func(d *istiod) string { return d.kubeconfig },
		why: "the rendered value names the optional istio-kubeconfig Secret's mount; without it a Pod uses its ServiceAccount token. Here: a client certificate for system:serviceaccount:<namespace>:<service account> with the ServiceAccount groups, so the rendered RBAC applies"},
	{fieldRef: "metadata.name", value: func(d *istiod) string { return d.deployment.Name + "-local" },
		why: "stands in for the generated Pod name <deployment>-<hash>-<id>"},
	{fieldRef: "metadata.namespace", value: func(d *istiod) string { return d.deployment.Namespace }, why: "the Deployment's namespace, as in a cluster"},
	{fieldRef: "spec.serviceAccountName", value: func(d *istiod) string { return d.deployment.Spec.Template.Spec.ServiceAccountName },
		why: "the Pod template's, as in a cluster"},
	{flag: "--grpcAddr", value: func(d *istiod) string { return d.listen[15010] }, why: "container port 15010 (plaintext XDS) on a free loopback port: several control planes share this host"},
	{flag: "--secureGRPCAddr", value: func(d *istiod) string { return d.listen[15012] }, why: "container port 15012 (XDS and CA over TLS), likewise"},
	{flag: "--httpsAddr", value: func(d *istiod) string { return d.listen[15017] }, why: "container port 15017 (webhooks), likewise"},
	{flag: "--httpAddr", value: func(d *istiod) string { return d.listen[8080] }, why: "container port 8080 (debug, /ready), likewise"},
	{flag: "--monitoringAddr", value: func(d *istiod) string { return d.listen[15014] }, why: "replaces the rendered --monitoringAddr=:15014, likewise"},
	{flag: "--ctrlz_address", value: func(*istiod) string { return "127.0.0.1" }, why: "ControlZ listens on loopback only"},
	{flag: "--ctrlz_port", value: func(d *istiod) string { _, p, _ := net.SplitHostPort(d.listen[9876]); return p }, why: "ControlZ (9876 in a Pod) on a free port"},
}

// outOfClusterSummary is outOfCluster as text, for istiod's log.
func (d *istiod) outOfClusterSummary() string {
	var b strings.Builder
	b.WriteString("# Out of cluster, the harness gives istiod (acceptance-tests/controlplane/istiod.go outOfCluster):\n")
	for _, o := range outOfCluster {
		name := o.flag + o.env
		if o.fieldRef != "" {
			name = "fieldRef " + o.fieldRef
		}
		fmt.Fprintf(&b, "#   %s = %s: %s\n", name, o.value(d), o.why)
	}
	return b.String()
}

// containerPorts are the ports istiod serves in a Pod, each moved to a
// free loopback port by outOfCluster.
var containerPorts = []int32{8080, 15010, 15012, 15014, 15017, 9876}

// istiodsFrom finds the istiod Deployments among the rendered objects.
// A Deployment without a namespace is in the Istio namespace.
func istiodsFrom(steps []rendered, istioNamespace string) ([]*istiod, error) {
	var out []*istiod
	for _, step := range steps {
		for _, obj := range step.objects {
			if obj.GetKind() != "Deployment" || obj.GetLabels()["app"] != "istiod" {
				continue
			}
			var d appsv1.Deployment
			if err := k8sruntime.DefaultUnstructuredConverter.FromUnstructured(obj.Object, &d); err != nil {
				return nil, fmt.Errorf("Deployment %s: %w", obj.GetName(), err)
			}
			if d.Namespace == "" {
				d.Namespace = istioNamespace
			}
			out = append(out, &istiod{deployment: &d, revision: d.Labels["istio.io/rev"]})
		}
	}
	return out, nil
}

// podFields resolves a fieldRef from outOfCluster's fieldRef rows.
func (d *istiod) podFields(path string) (string, error) {
	for _, o := range outOfCluster {
		if o.fieldRef == path {
			return o.value(d), nil
		}
	}
	return "", fmt.Errorf("fieldRef %s is not resolved by this control plane", path)
}

// resourceField resolves a resourceFieldRef as the kubelet does: the
// container's limit (or request) divided by the divisor, rounded up; a CPU
// limit that is not set is the node's allocatable CPUs, here this machine's.
func resourceField(c *corev1.Container, ref *corev1.ResourceFieldSelector) (string, error) {
	divisor := ref.Divisor
	if divisor.IsZero() {
		divisor = resource.MustParse("1")
	}
	kind, name, _ := strings.Cut(ref.Resource, ".")
	var q resource.Quantity
	var ok bool
	switch kind {
	case "limits":
		q, ok = c.Resources.Limits[corev1.ResourceName(name)]
		if !ok && name == string(corev1.ResourceCPU) {
			q, ok = *resource.NewQuantity(int64(runtime.NumCPU()), resource.DecimalSI), true
		}
	case "requests":
		q, ok = c.Resources.Requests[corev1.ResourceName(name)]
	}
	if !ok {
		return "", fmt.Errorf("resourceFieldRef %s is not resolved by this control plane", ref.Resource)
	}
	return strconv.FormatInt(int64(math.Ceil(float64(q.MilliValue())/float64(divisor.MilliValue()))), 10), nil
}

// resolveEnv turns the container's env into KEY=value pairs as the kubelet
// would, then applies outOfCluster's env entries.
func (d *istiod) resolveEnv(c *corev1.Container) ([]string, error) {
	if len(c.EnvFrom) > 0 {
		return nil, fmt.Errorf("Deployment %s: envFrom is not resolved by this control plane", d.name())
	}
	values := map[string]string{}
	var order []string
	for _, e := range c.Env {
		value := e.Value
		switch from := e.ValueFrom; {
		case from == nil:
		case from.FieldRef != nil:
			v, err := d.podFields(from.FieldRef.FieldPath)
			if err != nil {
				return nil, fmt.Errorf("Deployment %s env %s: %w", d.name(), e.Name, err)
			}
			value = v
		case from.ResourceFieldRef != nil:
			v, err := resourceField(c, from.ResourceFieldRef)
			if err != nil {
				return nil, fmt.Errorf("Deployment %s env %s: %w", d.name(), e.Name, err)
			}
			value = v
		default:
			return nil, fmt.Errorf("Deployment %s env %s: only value, fieldRef and resourceFieldRef are resolved by this control plane", d.name(), e.Name)
		}
		if _, seen := values[e.Name]; !seen {
			order = append(order, e.Name)
		}
		values[e.Name] = value
	}
	for _, o := range outOfCluster {
		if o.env != "" {
			if _, seen := values[o.env]; !seen {
				order = append(order, o.env)
			}
			values[o.env] = o.value(d)
		}
	}
	d.env = values
	env := baseEnv()
	for _, k := range order {
		env = append(env, k+"="+values[k])
	}
	return env, nil
}

// args are the container's args (command "pilot-discovery" is the image's
// entrypoint), then outOfCluster's flags.
func (d *istiod) args(c *corev1.Container) []string {
	args := append(append([]string{}, c.Command...), c.Args...)
	for _, o := range outOfCluster {
		if o.flag != "" {
			args = append(args, o.flag+"="+o.value(d))
		}
	}
	return args
}

// startIstiod starts one rendered istiod and waits until it is ready.
func (cp *ControlPlane) startIstiod(ctx context.Context, pilotBin string, d *istiod) error {
	name := d.name()
	// istiod authenticates as its ServiceAccount (client certificate with
	// that user name), so the rendered RBAC applies as in a cluster.
	sa := d.deployment.Spec.Template.Spec.ServiceAccountName
	if err := cp.pki.issue(name, "system:serviceaccount:"+d.deployment.Namespace+":"+sa,
		[]string{"system:serviceaccounts", "system:serviceaccounts:" + d.deployment.Namespace}, nil); err != nil {
		return err
	}
	d.kubeconfig = filepath.Join(cp.RunDir, name+".kubeconfig")
	if err := cp.pki.kubeconfig(d.kubeconfig, cp.Get("KUBE_APISERVER"), name); err != nil {
		return err
	}
	// Working directory: the Pod's "/", for istiod's relative ./etc and ./var paths.
	workDir := filepath.Join(cp.RunDir, name)
	if err := os.MkdirAll(workDir, 0o755); err != nil {
		return err
	}
	c, err := d.container()
	if err != nil {
		return err
	}
	env, err := d.resolveEnv(c)
	if err != nil {
		return err
	}
	cp.progress("starting %s (revision %s) from its rendered Deployment, XDS %s", name, d.revision, d.listen[15012])
	if err := os.WriteFile(filepath.Join(cp.RunDir, name+".log"), []byte(d.outOfClusterSummary()), 0o644); err != nil {
		return err
	}
	p, err := cp.startProcess(name, workDir, env, pilotBin, d.args(c)...)
	if err != nil {
		return err
	}
	d.process = p
	if err := cp.waitFor(ctx, p, name+" /ready", func() error {
		return httpOK(http.DefaultClient, "http://"+d.listen[8080]+"/ready")
	}); err != nil {
		return err
	}
	prefix := envPrefix(d.revision)
	cp.setEnv(prefix+"_GRPC_ADDR", d.listen[15010])
	cp.setEnv(prefix+"_XDS_ADDR", d.listen[15012])
	cp.setEnv(prefix+"_MONITORING_ADDR", d.listen[15014])
	cp.setEnv(prefix+"_HTTP_ADDR", d.listen[8080])
	cp.setEnv(prefix+"_WEBHOOK_ADDR", d.listen[15017])
	cp.setEnv(prefix+"_KUBECONFIG", d.kubeconfig)
	cp.setEnv(prefix+"_PID", strconv.Itoa(p.cmd.Process.Pid))
	return nil
}

// pickListenAddrs gives every container port of every istiod a free
// loopback address.
func pickListenAddrs(istiods []*istiod) error {
	addrs, err := ports.Loopback(len(istiods) * len(containerPorts))
	if err != nil {
		return err
	}
	for i, d := range istiods {
		d.listen = map[int32]string{}
		for j, port := range containerPorts {
			d.listen[port] = addrs[i*len(containerPorts)+j]
		}
	}
	return nil
}
