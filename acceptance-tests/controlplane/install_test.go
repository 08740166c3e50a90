package controlplane

// The pure parts of the install: profiles, how istiod's env is resolved, how
// Services and SNI names route, and the HTTP CONNECT proxy kube-apiserver's
// egress selector talks to. The live install is tested in
// acceptance-tests/controlplane_test.go.

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func TestProfilesRenderAsTheVMGuideSays(t *testing.T) {
	for _, tc := range []struct {
		profile, rev string
		install      []string
		gateway      []string
	}{
		{"default", "default", []string{"manifest", "generate", "--set", "profile=default"}, []string{"--single-cluster"}},
		{"revision", "canary", []string{"manifest", "generate", "--set", "profile=default", "--set", "revision=canary"},
			[]string{"--single-cluster", "--revision", "canary"}},
		{"multi-network", "default", []string{"manifest", "generate", "--set", "profile=default",
			"--set", "values.global.meshID=mesh1", "--set", "values.global.multiCluster.clusterName=cluster1", "--set", "values.global.network=network1"},
			[]string{"--network", "network1"}},
		{"multi-network-hostname", "default", []string{"manifest", "generate", "--set", "profile=default",
			"--set", "values.global.meshID=mesh1", "--set", "values.global.multiCluster.clusterName=cluster1", "--set", "values.global.network=network1",
			"--set", "values.pilot.env.ISTIOD_CUSTOM_HOST=eastwest-lb.tfpi.test"},
			[]string{"--network", "network1"}},
		// The canary beside the default install leaves the gateways alone.
		{"named-cluster", "canary", []string{"manifest", "generate", "--set", "profile=minimal", "--set", "revision=canary",
			"--set", "values.global.multiCluster.clusterName=cluster1", "--set", "values.global.network=network1"},
			[]string{"--network", "network1"}},
		{"custom-namespace", "default", []string{"manifest", "generate", "--set", "profile=default",
			"--set", "values.global.istioNamespace=istio-vm"}, []string{"--single-cluster"}},
	} {
		p, err := LookupProfile(tc.profile)
		if err != nil {
			t.Fatal(err)
		}
		if got := p.installArgs(tc.rev); !slices.Equal(got, tc.install) {
			t.Errorf("%s/%s install args %q, want %q", tc.profile, tc.rev, got, tc.install)
		}
		if got := p.eastWestGatewayArgs(); !slices.Equal(got, tc.gateway) {
			t.Errorf("%s gateway args %q, want %q", tc.profile, got, tc.gateway)
		}
	}
	if _, err := LookupProfile("nope"); err == nil || !strings.Contains(err.Error(), "named-cluster") {
		t.Errorf("unknown profile: %v", err)
	}
}

func testIstiod() *istiod {
	return &istiod{
		deployment: &appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Name: "istiod-canary", Namespace: "istio-system"},
			Spec: appsv1.DeploymentSpec{Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "istiod", "istio.io/rev": "canary"}},
				Spec: corev1.PodSpec{ServiceAccountName: "istiod-canary", Containers: []corev1.Container{{
					Name:  "discovery",
					Args:  []string{"discovery", "--monitoringAddr=:15014"},
					Ports: []corev1.ContainerPort{{Name: "https-webhooks", ContainerPort: 15017}},
					Env: []corev1.EnvVar{
						{Name: "REVISION", Value: "canary"},
						{Name: "POD_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
						{Name: "POD_NAMESPACE", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.namespace"}}},
						{Name: "SERVICE_ACCOUNT", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "spec.serviceAccountName"}}},
						{Name: "KUBECONFIG", Value: "/var/run/secrets/remote/config"},
						{Name: "GOMAXPROCS", ValueFrom: &corev1.EnvVarSource{ResourceFieldRef: &corev1.ResourceFieldSelector{Resource: "limits.cpu", Divisor: resource.MustParse("1")}}},
					},
				}}},
			}},
		},
		revision:   "canary",
		kubeconfig: "/run/istiod-canary.kubeconfig",
		listen:     map[int32]string{8080: "127.0.0.1:1", 15010: "127.0.0.1:2", 15012: "127.0.0.1:3", 15014: "127.0.0.1:4", 15017: "127.0.0.1:5", 9876: "127.0.0.1:6"},
	}
}

// The kubelet's resolution of the Deployment's env, then the harness's
// replacement of KUBECONFIG; flags after the rendered args.
func TestIstiodEnvAndArgsFromTheDeployment(t *testing.T) {
	d := testIstiod()
	c, err := d.container()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.resolveEnv(c); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"REVISION": "canary", "POD_NAME": "istiod-canary-local", "POD_NAMESPACE": "istio-system",
		"SERVICE_ACCOUNT": "istiod-canary", "KUBECONFIG": "/run/istiod-canary.kubeconfig",
		"GOMAXPROCS": strconv.Itoa(runtime.NumCPU()), // no limit: the node's CPUs
	}
	for k, v := range want {
		if d.env[k] != v {
			t.Errorf("env %s = %q, want %q", k, d.env[k], v)
		}
	}
	args := d.args(c)
	if !slices.Equal(args[:2], []string{"discovery", "--monitoringAddr=:15014"}) || !slices.Contains(args, "--monitoringAddr=127.0.0.1:4") ||
		!slices.Contains(args, "--httpsAddr=127.0.0.1:5") || !slices.Contains(args, "--ctrlz_port=6") {
		t.Errorf("args %q", args)
	}

	c.Resources.Limits = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1500m")}
	if _, err := d.resolveEnv(c); err != nil || d.env["GOMAXPROCS"] != "2" {
		t.Errorf("GOMAXPROCS with a 1500m limit = %q (%v), want 2 (rounded up)", d.env["GOMAXPROCS"], err)
	}
	c.Env = append(c.Env, corev1.EnvVar{Name: "X", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{Key: "k"}}})
	if _, err := d.resolveEnv(c); err == nil || !strings.Contains(err.Error(), "env X") {
		t.Errorf("an unresolvable env var: %v", err)
	}
}

func TestServicesRouteToTheIstiodTheySelect(t *testing.T) {
	d := testIstiod()
	svc := func(selector map[string]string, target intstr.IntOrString) *corev1.Service {
		return &corev1.Service{Spec: corev1.ServiceSpec{Selector: selector, Ports: []corev1.ServicePort{{Port: 443, TargetPort: target}}}}
	}
	canary := map[string]string{"app": "istiod", "istio.io/rev": "canary"}
	for _, tc := range []struct {
		svc  *corev1.Service
		want string
	}{
		{svc(canary, intstr.FromInt32(15017)), "127.0.0.1:5"},
		{svc(canary, intstr.FromString("https-webhooks")), "127.0.0.1:5"},
		{svc(map[string]string{"app": "istiod", "istio.io/rev": "default"}, intstr.FromInt32(15017)), ""},
		{svc(nil, intstr.FromInt32(15017)), ""},
	} {
		got, _ := serviceBackend(tc.svc, 443, []*istiod{d})
		if got != tc.want {
			t.Errorf("Service selecting %v → %v: backend %q, want %q", tc.svc.Spec.Selector, tc.svc.Spec.Ports[0].TargetPort, got, tc.want)
		}
	}
}

func TestSNIRoutesPreferExactNames(t *testing.T) {
	routes := []sniRoute{{SNI: "*", Backend: "default"}, {SNI: "istiod-canary.istio-system.svc", Backend: "canary"}}
	for sni, want := range map[string]string{"istiod-canary.istio-system.svc": "canary", "istiod.istio-system.svc": "default", "": "default"} {
		if got, _ := routeSNI(routes, sni); got != want {
			t.Errorf("SNI %q → %q, want %q", sni, got, want)
		}
	}
	if _, ok := routeSNI(routes[1:], "istiod.istio-system.svc"); ok {
		t.Error("a name without a route was routed")
	}
}

// kube-apiserver's egress selector: CONNECT <target> over the unix socket,
// 200, then the bytes flow to the backend; an unknown target gets 502.
func TestConnectProxyAsKubeAPIServerUsesIt(t *testing.T) {
	backend, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer backend.Close()
	go func() {
		for {
			c, err := backend.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); _, _ = io.Copy(c, c) }()
		}
	}()
	socket := filepath.Join(t.TempDir(), "egress.sock")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		_ = serveGateway(ctx, gatewayConfig{Connect: map[string]map[string]string{socket: {"10.0.0.7:443": backend.Addr().String()}}})
	}()
	connect := func(target string) (net.Conn, *bufio.Reader, *http.Response) {
		t.Helper()
		var c net.Conn
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			if c, err = net.Dial("unix", socket); err == nil || time.Now().After(deadline) {
				break
			}
		}
		if err != nil {
			t.Fatal(err)
		}
		// As k8s.io/apiserver/pkg/server/egressselector writes it.
		if _, err := io.WriteString(c, "CONNECT "+target+" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		br := bufio.NewReader(c)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		return c, br, resp
	}
	c, br, resp := connect("10.0.0.7:443")
	defer c.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("CONNECT to a routed target: %s", resp.Status)
	}
	if _, err := io.WriteString(c, "ping\n"); err != nil {
		t.Fatal(err)
	}
	if line, err := br.ReadString('\n'); err != nil || line != "ping\n" {
		t.Fatalf("through the tunnel: %q, %v", line, err)
	}
	c2, _, resp := connect("10.0.0.8:443")
	defer c2.Close()
	if resp.StatusCode != http.StatusBadGateway {
		t.Fatalf("CONNECT to an unknown target: %s, want 502", resp.Status)
	}
}
