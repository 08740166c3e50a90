package acceptance

// Tests of the control plane itself (no Terraform): what the resource tests
// rely on must hold, or they would fail for the wrong reason.

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

// eventually polls f until it returns nil or the timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not true after %s: %v", what, timeout, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func TestControlPlaneNamespaceLifecycle(t *testing.T) {
	ctx := context.Background()
	c := kubeClient(t)
	ns := randomName("cp-ns")
	if _, err := c.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// kube-controller-manager: default ServiceAccount and kube-root-ca.crt;
	// istiod: istio-ca-root-cert.
	eventually(t, 30*time.Second, "ServiceAccount default appears", func() error {
		_, err := c.CoreV1().ServiceAccounts(ns).Get(ctx, "default", metav1.GetOptions{})
		return err
	})
	eventually(t, 30*time.Second, "ConfigMap kube-root-ca.crt appears", func() error {
		_, err := c.CoreV1().ConfigMaps(ns).Get(ctx, "kube-root-ca.crt", metav1.GetOptions{})
		return err
	})
	eventually(t, 30*time.Second, "ConfigMap istio-ca-root-cert appears", func() error {
		_, err := c.CoreV1().ConfigMaps(ns).Get(ctx, "istio-ca-root-cert", metav1.GetOptions{})
		return err
	})
	// Owner references are garbage-collected.
	owner, err := c.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "owner"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{
		Name:            "owned",
		OwnerReferences: []metav1.OwnerReference{{APIVersion: "v1", Kind: "ConfigMap", Name: "owner", UID: owner.UID}},
	}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.CoreV1().ConfigMaps(ns).Delete(ctx, "owner", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, "owned ConfigMap garbage-collected", func() error {
		return gone(c.CoreV1().ConfigMaps(ns).Get(ctx, "owned", metav1.GetOptions{}))
	})
	// Namespaces finish deleting.
	if err := c.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, "namespace deleted", func() error {
		return gone(c.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{}))
	})
}

func gone[T any](_ T, err error) error {
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err == nil {
		return errStillThere
	}
	return err
}

var errStillThere = &apierrors.StatusError{ErrStatus: metav1.Status{Message: "still exists"}}

// A token with audience istio-ca validates through TokenReview with that
// audience, as istiod's CA checks VM and proxy tokens.
func TestControlPlaneTokenRequestIstioCA(t *testing.T) {
	ctx := context.Background()
	c := kubeClient(t)
	ns := testNamespace(t, "cp-token")
	if _, err := c.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "vm"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	expiry := int64(3600)
	tr, err := c.CoreV1().ServiceAccounts(ns).CreateToken(ctx, "vm", &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{Audiences: []string{"istio-ca"}, ExpirationSeconds: &expiry},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("TokenRequest: %v", err)
	}
	review, err := c.AuthenticationV1().TokenReviews().Create(ctx, &authenticationv1.TokenReview{
		Spec: authenticationv1.TokenReviewSpec{Token: tr.Status.Token, Audiences: []string{"istio-ca"}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("TokenReview: %v", err)
	}
	if !review.Status.Authenticated || review.Status.User.Username != "system:serviceaccount:"+ns+":vm" || !slices.Contains(review.Status.Audiences, "istio-ca") {
		t.Fatalf("TokenReview with audience istio-ca: %+v", review.Status)
	}
	// The same token is not valid for the API server's own audience.
	review, err = c.AuthenticationV1().TokenReviews().Create(ctx, &authenticationv1.TokenReview{
		Spec: authenticationv1.TokenReviewSpec{Token: tr.Status.Token},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if review.Status.Authenticated {
		t.Fatalf("token for audience istio-ca authenticated for the API server audience: %+v", review.Status)
	}
}

func TestControlPlaneIstioInstallation(t *testing.T) {
	ctx := context.Background()
	c := kubeClient(t)
	// WorkloadGroup is served at networking.istio.io/v1 (CRDs from the rendered base chart).
	if _, err := dynamicClient(t).Resource(gvrWorkloadGroup).Namespace("default").List(ctx, metav1.ListOptions{}); err != nil {
		t.Fatalf("list workloadgroups.networking.istio.io/v1: %v", err)
	}
	// Mesh and injector ConfigMaps of every installed revision, as rendered.
	for _, rev := range installedRevisions() {
		suffix := ""
		if rev != "default" {
			suffix = "-" + rev
		}
		for _, name := range []string{"istio" + suffix, "istio-sidecar-injector" + suffix} {
			if _, err := c.CoreV1().ConfigMaps("istio-system").Get(ctx, name, metav1.GetOptions{}); err != nil {
				t.Errorf("ConfigMap istio-system/%s: %v", name, err)
			}
		}
	}
	// East-west gateway: the load balancer address, and the network label on a multi-network mesh.
	svc, err := c.CoreV1().Services("istio-system").Get(ctx, "istio-eastwestgateway", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := corev1.LoadBalancerIngress{IP: cp.Get("EASTWEST_GATEWAY_IP")}
	if name := cp.Get("EASTWEST_GATEWAY_HOSTNAME"); name != "" {
		want = corev1.LoadBalancerIngress{Hostname: name}
	}
	if ing := svc.Status.LoadBalancer.Ingress; len(ing) != 1 || ing[0].IP != want.IP || ing[0].Hostname != want.Hostname {
		t.Errorf("istio-eastwestgateway ingress = %+v, want %+v", ing, want)
	}
	if svc.Labels["topology.istio.io/network"] != cp.Get("NETWORK") {
		t.Errorf("istio-eastwestgateway network label = %q, want %q", svc.Labels["topology.istio.io/network"], cp.Get("NETWORK"))
	}
	// istiod's CA secret (self-signed CA) in istio-system.
	if _, err := c.CoreV1().Secrets("istio-system").Get(ctx, "istio-ca-secret", metav1.GetOptions{}); err != nil {
		t.Errorf("istiod CA secret: %v", err)
	}
	// What the harness did not apply is only what needs a kubelet.
	for _, skipped := range cp.Skipped {
		if !strings.HasPrefix(skipped, "HorizontalPodAutoscaler ") && !strings.HasPrefix(skipped, "PodDisruptionBudget ") {
			t.Errorf("skipped %s", skipped)
		}
	}
	// istiod's Deployment is there as in a cluster (the provider reads its env), without Pods.
	deployment, err := c.AppsV1().Deployments("istio-system").Get(ctx, strings.TrimSuffix(istiodHost(newestRevision()), ".istio-system.svc"), metav1.GetOptions{})
	if err != nil {
		t.Errorf("istiod Deployment: %v", err)
	} else if deployment.Spec.Replicas == nil || *deployment.Spec.Replicas != 0 {
		t.Errorf("istiod Deployment replicas = %v, want 0 (no kubelet runs its Pods)", deployment.Spec.Replicas)
	}
}

// istiod's XDS/CA port (15012 in a cluster) serves TLS with a certificate for
// istiod[-rev].istio-system.svc signed by the mesh root in
// istio-ca-root-cert, directly and through the east-west gateway's address
// (routed by SNI as the applied expose-istiod VirtualServices say, as a VM
// whose hosts file points istiod at the gateway connects).
func TestControlPlaneIstiodTLS(t *testing.T) {
	gw := cp.Get("EASTWEST_GATEWAY_IP")
	type target struct{ addr, host string }
	var targets []target
	for _, rev := range installedRevisions() {
		prefix := istiodEnvPrefix(rev)
		targets = append(targets,
			target{cp.Get(prefix + "_XDS_ADDR"), istiodHost(rev)},
			target{net.JoinHostPort(gw, "15012"), istiodHost(rev)},
			target{net.JoinHostPort(gw, "15017"), istiodHost(rev)},
		)
	}
	root, err := os.ReadFile(cp.Get("ISTIO_ROOT_CERT"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(root) {
		t.Fatal("no certificate in ISTIO_ROOT_CERT")
	}
	for _, tc := range targets {
		if tc.addr == "" || strings.HasPrefix(tc.addr, ":") {
			t.Fatalf("address for %s missing from the env file", tc.host)
		}
		conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", tc.addr, &tls.Config{
			RootCAs: pool, ServerName: tc.host, NextProtos: []string{"h2"},
		})
		if err != nil {
			t.Fatalf("TLS to istiod at %s as %s: %v", tc.addr, tc.host, err)
		}
		conn.Close()
	}
}

func TestControlPlaneUnstructuredWorkloadGroup(t *testing.T) {
	ctx := context.Background()
	ns := testNamespace(t, "cp-wg")
	wg := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "networking.istio.io/v1",
		"kind":       "WorkloadGroup",
		"metadata":   map[string]any{"name": "probe", "namespace": ns},
		"spec": map[string]any{
			"metadata": map[string]any{"labels": map[string]any{"app": "probe"}},
			"template": map[string]any{"serviceAccount": "default", "network": cp.Get("NETWORK")},
		},
	}}
	if _, err := dynamicClient(t).Resource(gvrWorkloadGroup).Namespace(ns).Create(ctx, wg, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create WorkloadGroup v1: %v", err)
	}
	getObject(t, gvrWorkloadGroup, ns, "probe")
	if err := dynamicClient(t).Resource(gvrWorkloadGroup).Namespace(ns).Delete(ctx, "probe", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := checkObjectGone(gvrWorkloadGroup, ns, "probe"); err != nil {
		t.Fatal(err)
	}
}

// istiod's validating webhook is live, as in a cluster: istiod patched every
// rendered validating webhook configuration with its root certificate and
// switched it to failurePolicy Fail, and kube-apiserver asks istiod about
// each Istio object. WorkloadGroups that Istio's CRD schema allows but
// pkg/config/validation rejects (validateReadinessProbe) are denied by
// validation.istio.io when created straight through the API; a valid one is
// accepted.
func TestControlPlaneValidationWebhook(t *testing.T) {
	ctx := context.Background()
	root, err := os.ReadFile(cp.Get("ISTIO_ROOT_CERT"))
	if err != nil {
		t.Fatal(err)
	}
	names := strings.Split(cp.Get("ISTIO_VALIDATING_WEBHOOKS"), ",")
	for _, name := range names {
		config, err := kubeClient(t).AdmissionregistrationV1().ValidatingWebhookConfigurations().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatalf("ValidatingWebhookConfiguration %s: %v", name, err)
		}
		for _, hook := range config.Webhooks {
			if string(hook.ClientConfig.CABundle) != string(root) {
				t.Errorf("%s/%s: caBundle is not istiod's root certificate", name, hook.Name)
			}
			if hook.FailurePolicy == nil || *hook.FailurePolicy != admissionregistrationv1.Fail {
				t.Errorf("%s/%s: failurePolicy %v, want Fail", name, hook.Name, hook.FailurePolicy)
			}
		}
	}

	ns := testNamespace(t, "cp-webhook")
	group := func(name string, probe map[string]any) *unstructured.Unstructured {
		return &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "networking.istio.io/v1",
			"kind":       "WorkloadGroup",
			"metadata":   map[string]any{"name": name, "namespace": ns},
			"spec": map[string]any{
				"metadata": map[string]any{"labels": map[string]any{"app": name}},
				"template": map[string]any{"serviceAccount": "default"},
				"probe":    probe,
			},
		}}
	}
	groups := dynamicClient(t).Resource(gvrWorkloadGroup).Namespace(ns)
	for _, tc := range []struct {
		name   string
		probe  map[string]any
		denial string
	}{
		{"grpc-probe", map[string]any{"grpc": map[string]any{"port": int64(9090)}}, "unknown health check method"},
		{"probe-without-handler", map[string]any{"periodSeconds": int64(5)}, "unknown health check method"},
		{"exec-without-command", map[string]any{"exec": map[string]any{"command": []any{}}}, "exec.command is required"},
	} {
		_, err := groups.Create(ctx, group(tc.name, tc.probe), metav1.CreateOptions{})
		if err == nil {
			t.Errorf("WorkloadGroup %s with probe %v was accepted", tc.name, tc.probe)
			continue
		}
		if msg := err.Error(); !strings.Contains(msg, `admission webhook "validation.istio.io" denied the request`) || !strings.Contains(msg, tc.denial) {
			t.Errorf("WorkloadGroup %s: want a denial by validation.istio.io saying %q, got: %v", tc.name, tc.denial, err)
		} else {
			t.Logf("%s: %v", tc.name, err)
		}
	}
	valid := map[string]any{"httpGet": map[string]any{"port": int64(8080), "path": "/ready"}}
	if _, err := groups.Create(ctx, group("http-probe", valid), metav1.CreateOptions{}); err != nil {
		t.Fatalf("a valid WorkloadGroup was not accepted: %v", err)
	}
}

// istiod runs with exactly the args and env of its rendered Deployment
// (RUN_DIR/install): every rendered arg in order, then only the harness's
// listen-address and ControlZ flags; every rendered env value unchanged
// except KUBECONFIG, which the harness replaces.
func TestControlPlaneIstiodRunsRenderedDeployment(t *testing.T) {
	for _, rev := range installedRevisions() {
		prefix, name := "ISTIOD", "istiod"
		if rev != "default" {
			prefix, name = "ISTIOD_"+strings.ToUpper(rev), "istiod-"+rev
		}
		deployment := renderedDeployment(t, name)
		container := deployment.Spec.Template.Spec.Containers[0]
		pid := cp.Get(prefix + "_PID")
		cmdline, err := os.ReadFile("/proc/" + pid + "/cmdline")
		if err != nil {
			t.Fatalf("%s (pid %s): %v", name, pid, err)
		}
		args := strings.Split(strings.TrimRight(string(cmdline), "\x00"), "\x00")[1:]
		rendered := append(append([]string{}, container.Command...), container.Args...)
		if len(args) < len(rendered) || !slices.Equal(args[:len(rendered)], rendered) {
			t.Errorf("%s args %q do not start with the rendered args %q", name, args, rendered)
		} else {
			for _, extra := range args[len(rendered):] {
				flag, _, _ := strings.Cut(extra, "=")
				if !slices.Contains([]string{"--grpcAddr", "--secureGRPCAddr", "--httpsAddr", "--httpAddr", "--monitoringAddr", "--ctrlz_address", "--ctrlz_port"}, flag) {
					t.Errorf("%s: the harness added %s", name, extra)
				}
			}
		}
		environ, err := os.ReadFile("/proc/" + pid + "/environ")
		if err != nil {
			t.Fatal(err)
		}
		env := map[string]string{}
		for _, kv := range strings.Split(string(environ), "\x00") {
			if k, v, ok := strings.Cut(kv, "="); ok {
				env[k] = v
			}
		}
		for _, e := range container.Env {
			got, ok := env[e.Name]
			switch {
			case !ok:
				t.Errorf("%s: rendered env %s missing", name, e.Name)
			case e.Name == "KUBECONFIG":
				if got != cp.Get(prefix+"_KUBECONFIG") {
					t.Errorf("%s: KUBECONFIG = %q, want the harness's %q", name, got, cp.Get(prefix+"_KUBECONFIG"))
				}
			case e.ValueFrom == nil && got != e.Value:
				t.Errorf("%s: env %s = %q, rendered %q", name, e.Name, got, e.Value)
			}
		}
		if env["CLUSTER_ID"] != cp.Get("CLUSTER_ID") || env["POD_NAMESPACE"] != "istio-system" || env["SERVICE_ACCOUNT"] != name {
			t.Errorf("%s: CLUSTER_ID=%q POD_NAMESPACE=%q SERVICE_ACCOUNT=%q", name, env["CLUSTER_ID"], env["POD_NAMESPACE"], env["SERVICE_ACCOUNT"])
		}
	}
}

// renderedDeployment reads a Deployment from what istioctl rendered.
func renderedDeployment(t *testing.T, name string) *appsv1.Deployment {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(cp.Get("ISTIO_INSTALL_DIR"), "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no rendered install in %s (%v)", cp.Get("ISTIO_INSTALL_DIR"), err)
	}
	for _, file := range files {
		raw, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for _, doc := range strings.Split(string(raw), "\n---") {
			var d appsv1.Deployment
			if err := yaml.Unmarshal([]byte(doc), &d); err == nil && d.Kind == "Deployment" && d.Name == name {
				return &d
			}
		}
	}
	t.Fatalf("no rendered Deployment %s in %s", name, cp.Get("ISTIO_INSTALL_DIR"))
	return nil
}
