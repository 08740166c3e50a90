package controlplane

// How traffic finds istiod here: the routes of the two network stand-ins
// (gateway.go), computed from the applied Services and VirtualServices as
// kube-proxy and the gateway's Envoy would compute them.

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/intstr"
)

var gvrVirtualService = schema.GroupVersionResource{Group: "networking.istio.io", Version: "v1", Resource: "virtualservices"}

// egressSelectorConfig is kube-apiserver's --egress-selector-config-file:
// traffic to the cluster (webhooks, aggregated APIs) goes through the
// cluster-network process's unix socket.
func egressSelectorConfig(socket string) string {
	return fmt.Sprintf(`apiVersion: apiserver.k8s.io/v1beta1
kind: EgressSelectorConfiguration
egressSelections:
- name: cluster
  connection:
    proxyProtocol: HTTPConnect
    transport:
      uds:
        udsName: %s
`, socket)
}

// serviceBackend is where a Service port leads: the local istiod whose Pods
// the Service selects, at the container port the Service port targets.
func serviceBackend(svc *corev1.Service, port int32, istiods []*istiod) (string, bool) {
	for _, sp := range svc.Spec.Ports {
		if sp.Port != port {
			continue
		}
		for _, d := range istiods {
			if !d.selectedBy(svc.Spec.Selector) {
				continue
			}
			if addr, ok := d.listen[d.targetPort(sp.TargetPort, sp.Port)]; ok {
				return addr, true
			}
		}
	}
	return "", false
}

// targetPort resolves a Service targetPort (number, container port name, or
// unset = the Service port) against istiod's container.
func (d *istiod) targetPort(target intstr.IntOrString, port int32) int32 {
	switch {
	case target.Type == intstr.String:
		for _, c := range d.deployment.Spec.Template.Spec.Containers {
			for _, p := range c.Ports {
				if p.Name == target.StrVal {
					return p.ContainerPort
				}
			}
		}
		return 0
	case target.IntVal != 0:
		return target.IntVal
	}
	return port
}

// clusterNetworkRoutes maps ClusterIP:port of every Service in the Istio namespace
// that selects a local istiod to that istiod's listen address.
func (cp *ControlPlane) clusterNetworkRoutes(ctx context.Context) (map[string]string, error) {
	services, err := cp.client.CoreV1().Services(cp.profile.IstioNamespace()).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	routes := map[string]string{}
	for i := range services.Items {
		svc := &services.Items[i]
		if svc.Spec.ClusterIP == "" || svc.Spec.ClusterIP == corev1.ClusterIPNone {
			continue
		}
		for _, sp := range svc.Spec.Ports {
			if backend, ok := serviceBackend(svc, sp.Port, cp.istiods); ok {
				routes[net.JoinHostPort(svc.Spec.ClusterIP, strconv.Itoa(int(sp.Port)))] = backend
			}
		}
	}
	if len(routes) == 0 {
		return nil, fmt.Errorf("no Service in %s selects istiod's Pods", cp.profile.IstioNamespace())
	}
	return routes, nil
}

// startClusterNetwork starts the cluster-network process on the socket named
// in kube-apiserver's egress selector config.
func (cp *ControlPlane) startClusterNetwork(ctx context.Context) error {
	routes, err := cp.clusterNetworkRoutes(ctx)
	if err != nil {
		return err
	}
	cp.progress("starting cluster-network (kube-apiserver → Service ClusterIPs: %v)", routes)
	p, err := cp.startNetworkProcess("cluster-network", gatewayConfig{Connect: map[string]map[string]string{cp.egressSocket: routes}})
	if err != nil {
		return err
	}
	if err := cp.waitFor(ctx, p, "cluster-network socket "+cp.egressSocket, func() error {
		c, err := net.Dial("unix", cp.egressSocket)
		if err == nil {
			c.Close()
		}
		return err
	}); err != nil {
		return fmt.Errorf("%w\n%s", err, gatewayHint)
	}
	cp.setEnv("CLUSTER_NETWORK_PID", strconv.Itoa(p.cmd.Process.Pid))
	return nil
}

// gatewayRoutes are the TLS routes of every VirtualService in the Istio namespace
// bound to a Gateway: listen port → SNI routes to the destination Service's
// backend. sniHosts "*" becomes the catch-all route.
func (cp *ControlPlane) gatewayRoutes(ctx context.Context) (map[int64][]sniRoute, error) {
	list, err := cp.Dynamic().Resource(gvrVirtualService).Namespace(cp.profile.IstioNamespace()).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	routes := map[int64][]sniRoute{}
	for _, vs := range list.Items {
		tlsRoutes, _, _ := unstructured.NestedSlice(vs.Object, "spec", "tls")
		for _, r := range tlsRoutes {
			rm, _ := r.(map[string]any)
			backend, err := cp.destinationBackend(ctx, vs.GetName(), rm)
			if err != nil {
				return nil, err
			}
			matches, _ := rm["match"].([]any)
			for _, m := range matches {
				mm, _ := m.(map[string]any)
				port, _ := mm["port"].(int64)
				hosts, _ := mm["sniHosts"].([]any)
				for _, h := range hosts {
					routes[port] = append(routes[port], sniRoute{SNI: fmt.Sprint(h), Backend: backend})
				}
			}
		}
	}
	return routes, nil
}

// destinationBackend resolves the first destination of a VirtualService TLS
// route (host <service>.<namespace>.svc.cluster.local, port) to its backend.
func (cp *ControlPlane) destinationBackend(ctx context.Context, vs string, route map[string]any) (string, error) {
	dests, _ := route["route"].([]any)
	if len(dests) == 0 {
		return "", fmt.Errorf("VirtualService %s: TLS route without a destination", vs)
	}
	d, _ := dests[0].(map[string]any)
	host, _, _ := unstructured.NestedString(d, "destination", "host")
	port, _, _ := unstructured.NestedInt64(d, "destination", "port", "number")
	parts := strings.Split(host, ".")
	if len(parts) < 2 {
		return "", fmt.Errorf("VirtualService %s: destination host %q is not <service>.<namespace>...", vs, host)
	}
	svc, err := cp.client.CoreV1().Services(parts[1]).Get(ctx, parts[0], getOpts)
	if err != nil {
		return "", fmt.Errorf("VirtualService %s: destination %s: %w", vs, host, err)
	}
	backend, ok := serviceBackend(svc, int32(port), cp.istiods)
	if !ok {
		return "", fmt.Errorf("VirtualService %s: destination %s:%d is served by no local istiod", vs, host, port)
	}
	return backend, nil
}

// startEastWestGateway runs the gateway process on the load balancer address
// with the routes of the applied VirtualServices, and waits until every
// istiod the routes name answers through it with its own certificate.
func (cp *ControlPlane) startEastWestGateway(ctx context.Context) error {
	routes, err := cp.gatewayRoutes(ctx)
	if err != nil {
		return err
	}
	cfg := gatewayConfig{SNI: map[string][]sniRoute{}}
	for port, r := range routes {
		cfg.SNI[net.JoinHostPort(cp.gatewayIP, strconv.FormatInt(port, 10))] = r
	}
	cp.progress("starting eastwest-gateway on %s (ports %v)", cp.gatewayIP, sortedKeys(routes))
	p, err := cp.startNetworkProcess("eastwest-gateway", cfg)
	if err != nil {
		return err
	}
	root, err := os.ReadFile(cp.Get("ISTIO_ROOT_CERT"))
	if err != nil {
		return err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(root)
	var hosts []string
	for _, d := range cp.istiods {
		if _, ok := routeSNI(routes[15012], d.host()); ok {
			hosts = append(hosts, d.host())
		}
	}
	if len(hosts) == 0 {
		return fmt.Errorf("the applied VirtualServices route no istiod through the east-west gateway's port 15012: %v", routes)
	}
	addr := net.JoinHostPort(cp.gatewayIP, "15012")
	if err := cp.waitFor(ctx, p, "istiod TLS through "+addr, func() error {
		for _, host := range hosts {
			conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 2 * time.Second}, "tcp", addr,
				&tls.Config{RootCAs: pool, ServerName: host, NextProtos: []string{"h2"}})
			if err != nil {
				return fmt.Errorf("%s: %w", host, err)
			}
			conn.Close()
		}
		return nil
	}); err != nil {
		return fmt.Errorf("%w\n%s", err, gatewayHint)
	}
	cp.setEnv("EASTWEST_GATEWAY_PID", strconv.Itoa(p.cmd.Process.Pid))
	return nil
}

// host is the Service name of this istiod, as in its
// certificate and in a VM's hosts file.
func (d *istiod) host() string { return istiodName(d.revision) + "." + d.deployment.Namespace + ".svc" }

func sortedKeys[V any](m map[int64]V) []int64 {
	var keys []int64
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i] < keys[j] })
	return keys
}

// egressSocketPath is the cluster-network socket of a run directory (unix
// socket paths are limited to 107 bytes).
func egressSocketPath(runDir string) (string, error) {
	socket := filepath.Join(runDir, "cluster-network.sock")
	if len(socket) > 107 {
		return "", fmt.Errorf("run directory %s is too long for a unix socket path (%s); choose a shorter --run-dir or TFPI_CACHE", runDir, socket)
	}
	return socket, nil
}
