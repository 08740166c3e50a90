package controlplane

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"
)

// The network stand-ins, one program with two roles (both run as separate
// processes: the program that called Start re-executes itself with
// gatewayEnv set, and RunGatewayIfRequested, first thing in main or
// TestMain, serves instead of doing anything else):
//
//   - "cluster-network": what kube-proxy and the Pod network give
//     kube-apiserver in a cluster. kube-apiserver sends its traffic to the
//     cluster (webhook calls to a Service's ClusterIP) through its egress
//     selector (--egress-selector-config-file, HTTP CONNECT over a unix
//     socket); this proxy connects each ClusterIP:port to the local istiod
//     whose Pods that Service selects.
//   - "eastwest-gateway": the Envoy of the istio-eastwestgateway Service with
//     expose-istiod applied: TLS passthrough by SNI on the Service's load
//     balancer address (a loopback address of its own per control plane),
//     routed as the applied VirtualServices say. A VM whose hosts file maps
//     istiod.istio-system.svc to the gateway IP reaches istiod and still
//     verifies istiod's own certificate.

const gatewayEnv = "TFPI_CONTROLPLANE_GATEWAY"

// gatewayConfig is what one network stand-in process serves.
type gatewayConfig struct {
	// SNI maps a listen address to its routes by TLS server name.
	SNI map[string][]sniRoute `json:"sni,omitempty"`
	// Connect maps a unix socket, served as an HTTP CONNECT proxy, to its
	// routes: target host:port → backend address.
	Connect map[string]map[string]string `json:"connect,omitempty"`
}

// sniRoute sends connections whose SNI is SNI to Backend; SNI "*" matches
// any name (and none), after every exact route.
type sniRoute struct {
	SNI     string `json:"sni"`
	Backend string `json:"backend"`
}

// RunGatewayIfRequested serves a network stand-in and exits when this
// process was started as one by Start. Call it first in main and TestMain.
func RunGatewayIfRequested() {
	raw := os.Getenv(gatewayEnv)
	if raw == "" {
		return
	}
	var cfg gatewayConfig
	if err := json.Unmarshal([]byte(raw), &cfg); err != nil {
		fmt.Fprintf(os.Stderr, "gateway: bad %s: %v\n", gatewayEnv, err)
		os.Exit(2)
	}
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	if err := serveGateway(ctx, cfg); err != nil {
		fmt.Fprintf(os.Stderr, "gateway: %v\n", err)
		os.Exit(1)
	}
	os.Exit(0)
}

func serveGateway(ctx context.Context, cfg gatewayConfig) error {
	var listeners []net.Listener
	closeAll := func() {
		for _, l := range listeners {
			l.Close()
		}
	}
	var wg sync.WaitGroup
	serve := func(l net.Listener, handle func(net.Conn)) {
		listeners = append(listeners, l)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				go handle(c)
			}
		}()
	}
	for addr, routes := range cfg.SNI {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			closeAll()
			return err
		}
		fmt.Fprintf(os.Stderr, "gateway: listening on %s, routes by SNI %v\n", addr, routes)
		serve(l, func(c net.Conn) { proxyBySNI(c, routes) })
	}
	for socket, routes := range cfg.Connect {
		_ = os.Remove(socket)
		l, err := net.Listen("unix", socket)
		if err != nil {
			closeAll()
			return err
		}
		fmt.Fprintf(os.Stderr, "gateway: listening on %s (HTTP CONNECT), routes %v\n", socket, routes)
		serve(l, func(c net.Conn) { proxyConnect(c, routes) })
	}
	<-ctx.Done()
	closeAll()
	wg.Wait()
	return nil
}

// proxyBySNI reads the TLS ClientHello, picks the backend by server name and
// splices the connection, replaying the bytes already read.
func proxyBySNI(c net.Conn, routes []sniRoute) {
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	var seen bytes.Buffer
	sni, err := peekSNI(io.TeeReader(c, &seen))
	_ = c.SetReadDeadline(time.Time{})
	if err != nil {
		fmt.Fprintf(os.Stderr, "gateway: %s: no TLS ClientHello: %v\n", c.RemoteAddr(), err)
		return
	}
	backend, ok := routeSNI(routes, sni)
	if !ok {
		fmt.Fprintf(os.Stderr, "gateway: %s: no route for SNI %q\n", c.RemoteAddr(), sni)
		return
	}
	splice(c, backend, seen.Bytes())
}

// routeSNI picks the route of an exact server name, else a "*" route.
func routeSNI(routes []sniRoute, sni string) (string, bool) {
	for _, r := range routes {
		if r.SNI == sni && sni != "" {
			return r.Backend, true
		}
	}
	for _, r := range routes {
		if r.SNI == "*" {
			return r.Backend, true
		}
	}
	return "", false
}

// proxyConnect serves one HTTP CONNECT request (as kube-apiserver's egress
// selector sends it: the target in the request line) and splices the
// connection to the target's backend.
func proxyConnect(c net.Conn, routes map[string]string) {
	defer c.Close()
	br := bufio.NewReader(c)
	req, err := http.ReadRequest(br)
	if err != nil {
		fmt.Fprintf(os.Stderr, "gateway: CONNECT: %v\n", err)
		return
	}
	if req.Method != http.MethodConnect {
		fmt.Fprintf(c, "HTTP/1.1 405 Method Not Allowed\r\n\r\n")
		return
	}
	backend, ok := routes[req.URL.Host]
	if !ok {
		fmt.Fprintf(os.Stderr, "gateway: CONNECT %s: no Service backend here\n", req.URL.Host)
		fmt.Fprintf(c, "HTTP/1.1 502 Bad Gateway\r\n\r\n")
		return
	}
	fmt.Fprintf(c, "HTTP/1.1 200 Connection established\r\n\r\n")
	buffered, _ := br.Peek(br.Buffered())
	splice(c, backend, buffered)
}

// splice connects c to backend, first sending what was already read from c.
func splice(c net.Conn, backend string, alreadyRead []byte) {
	b, err := net.DialTimeout("tcp", backend, 5*time.Second)
	if err != nil {
		fmt.Fprintf(os.Stderr, "gateway: %s → %s: %v\n", c.RemoteAddr(), backend, err)
		return
	}
	defer b.Close()
	if _, err := b.Write(alreadyRead); err != nil {
		return
	}
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(b, c); closeWrite(b); done <- struct{}{} }()
	go func() { _, _ = io.Copy(c, b); closeWrite(c); done <- struct{}{} }()
	<-done
	<-done
}

func closeWrite(c net.Conn) {
	switch conn := c.(type) {
	case *net.TCPConn:
		_ = conn.CloseWrite()
	case *net.UnixConn:
		_ = conn.CloseWrite()
	}
}

var errHelloRead = errors.New("hello read")

// peekSNI lets crypto/tls parse the ClientHello from r and stops the
// handshake right after, returning the server name.
func peekSNI(r io.Reader) (string, error) {
	var sni string
	err := tls.Server(readOnlyConn{r: r}, &tls.Config{
		GetConfigForClient: func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
			sni = hello.ServerName
			return nil, errHelloRead
		},
	}).Handshake()
	if errors.Is(err, errHelloRead) || (err != nil && sni != "") {
		return sni, nil
	}
	if err == nil {
		err = errors.New("unexpected handshake success")
	}
	return "", err
}

// readOnlyConn is a net.Conn that only reads; writes are dropped.
type readOnlyConn struct {
	r io.Reader
	net.Conn
}

func (c readOnlyConn) Read(p []byte) (int, error)       { return c.r.Read(p) }
func (c readOnlyConn) Write(p []byte) (int, error)      { return len(p), nil }
func (c readOnlyConn) Close() error                     { return nil }
func (c readOnlyConn) LocalAddr() net.Addr              { return nil }
func (c readOnlyConn) RemoteAddr() net.Addr             { return nil }
func (c readOnlyConn) SetDeadline(time.Time) error      { return nil }
func (c readOnlyConn) SetReadDeadline(time.Time) error  { return nil }
func (c readOnlyConn) SetWriteDeadline(time.Time) error { return nil }

// pickGatewayIP returns a loopback address on which ports 15012 and 15017 are
// free: 127.1.X.Y at random, so control planes running side by side (tests,
// a kept demo, other users) get their own gateway address.
func pickGatewayIP() (string, error) {
	for range 50 {
		ip := fmt.Sprintf("127.1.%d.%d", 1+rand.IntN(254), 1+rand.IntN(254))
		if portsFree(ip, "15012", "15017") {
			return ip, nil
		}
	}
	return "", errors.New("no loopback address 127.1.x.y with free ports 15012 and 15017")
}

func portsFree(ip string, ports ...string) bool {
	for _, p := range ports {
		l, err := net.Listen("tcp", net.JoinHostPort(ip, p))
		if err != nil {
			return false
		}
		l.Close()
	}
	return true
}

// startNetworkProcess starts one network stand-in process.
func (cp *ControlPlane) startNetworkProcess(name string, cfg gatewayConfig) (*process, error) {
	raw, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	return cp.startProcess(name, cp.RunDir, append(baseEnv(), gatewayEnv+"="+string(raw)), self)
}

// gatewayHint explains the usual reason a network process never listens.
const gatewayHint = "(the program that starts the control plane must call controlplane.RunGatewayIfRequested() first in main/TestMain)"
