package acceptance

// Tests of the control plane itself (no Terraform): what the resource tests
// rely on must hold, or they would fail for the wrong reason.

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
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
	// WorkloadGroup is served at networking.istio.io/v1 (from Istio's CRD YAML).
	wgs, err := dynamicClient(t).Resource(gvrWorkloadGroup).Namespace("default").List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatalf("list workloadgroups.networking.istio.io/v1: %v", err)
	}
	_ = wgs
	// Mesh and injector ConfigMaps for both revisions.
	for _, name := range []string{"istio", "istio-sidecar-injector", "istio-canary", "istio-sidecar-injector-canary"} {
		if _, err := c.CoreV1().ConfigMaps("istio-system").Get(ctx, name, metav1.GetOptions{}); err != nil {
			t.Errorf("ConfigMap istio-system/%s: %v", name, err)
		}
	}
	// East-west gateway with an external IP and its network label.
	svc, err := c.CoreV1().Services("istio-system").Get(ctx, "istio-eastwestgateway", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if ing := svc.Status.LoadBalancer.Ingress; len(ing) != 1 || ing[0].IP != cp.Get("EASTWEST_GATEWAY_IP") {
		t.Errorf("istio-eastwestgateway ingress = %+v, want IP %s", ing, cp.Get("EASTWEST_GATEWAY_IP"))
	}
	if svc.Labels["topology.istio.io/network"] != cp.Get("NETWORK") {
		t.Errorf("istio-eastwestgateway labels = %v", svc.Labels)
	}
	// istiod's CA secret (self-signed CA) and root cert in istio-system.
	if _, err := c.CoreV1().Secrets("istio-system").Get(ctx, "istio-ca-secret", metav1.GetOptions{}); err != nil {
		t.Errorf("istiod CA secret: %v", err)
	}
}

// istiod's XDS/CA port (15012 in a cluster) serves TLS with a certificate for
// istiod[-rev].istio-system.svc signed by the mesh root in
// istio-ca-root-cert, directly and through the east-west gateway IP (routed
// by SNI, as a VM whose hosts file points istiod at the gateway connects).
func TestControlPlaneIstiodTLS(t *testing.T) {
	gw := cp.Get("EASTWEST_GATEWAY_IP")
	for _, tc := range []struct{ addr, host string }{
		{cp.Get("ISTIOD_XDS_ADDR"), "istiod.istio-system.svc"},
		{cp.Get("ISTIOD_CANARY_XDS_ADDR"), "istiod-canary.istio-system.svc"},
		{net.JoinHostPort(gw, "15012"), "istiod.istio-system.svc"},
		{net.JoinHostPort(gw, "15012"), "istiod-canary.istio-system.svc"},
		{net.JoinHostPort(gw, "15017"), "istiod.istio-system.svc"},
	} {
		addr := tc.addr
		if addr == "" || strings.HasPrefix(addr, ":") {
			t.Fatalf("address for %s missing from the env file", tc.host)
		}
		root, err := os.ReadFile(cp.Get("ISTIO_ROOT_CERT"))
		if err != nil {
			t.Fatal(err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(root) {
			t.Fatal("no certificate in ISTIO_ROOT_CERT")
		}
		conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, &tls.Config{
			RootCAs: pool, ServerName: tc.host, NextProtos: []string{"h2"},
		})
		if err != nil {
			t.Fatalf("TLS to istiod at %s as %s: %v", addr, tc.host, err)
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
