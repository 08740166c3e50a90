package controlplane

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"
)

// The east-west gateway stand-in: TLS passthrough routed by SNI, as the
// istio-eastwestgateway with samples/multicluster/expose-istiod.yaml (and
// expose-istiod-rev.yaml.tmpl for revisions) does in a cluster. It listens on
// the Service's external IP (a loopback address of its own per control plane)
// on 15012 (XDS + CA) and 15017 (webhooks), so a VM whose hosts file maps
// istiod.istio-system.svc to the gateway IP reaches istiod and still verifies
// istiod's own certificate.
//
// It runs as a separate process: the program that called Start re-executes
// itself with gatewayEnv set, and RunGatewayIfRequested (first thing in main
// or TestMain) serves instead of doing anything else.

const gatewayEnv = "TFPI_CONTROLPLANE_GATEWAY"

// gatewayConfig maps listen address → SNI → backend address; SNI "" is the
// route for clients that send none.
type gatewayConfig map[string]map[string]string

// RunGatewayIfRequested serves the east-west gateway and exits when this
// process was started as one by Start. Call it first in main and TestMain.
func RunGatewayIfRequested() {
	raw := os.Getenv(gatewayEnv)
	if raw == "" {
		return
	}
	var cfg gatewayConfig
	if err := json.Unmarshal([]byte(raw), &cfg); err != nil {
		fmt.Fprintf(os.Stderr, "eastwest-gateway: bad %s: %v\n", gatewayEnv, err)
		os.Exit(2)
	}
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	if err := serveGateway(ctx, cfg); err != nil {
		fmt.Fprintf(os.Stderr, "eastwest-gateway: %v\n", err)
		os.Exit(1)
	}
	os.Exit(0)
}

func serveGateway(ctx context.Context, cfg gatewayConfig) error {
	var listeners []net.Listener
	for addr := range cfg {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			for _, l := range listeners {
				l.Close()
			}
			return err
		}
		listeners = append(listeners, l)
		fmt.Fprintf(os.Stderr, "eastwest-gateway: listening on %s, routes %v\n", addr, cfg[addr])
	}
	var wg sync.WaitGroup
	for _, l := range listeners {
		routes := cfg[l.Addr().String()]
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				go proxyBySNI(c, routes)
			}
		}()
	}
	<-ctx.Done()
	for _, l := range listeners {
		l.Close()
	}
	wg.Wait()
	return nil
}

// proxyBySNI reads the TLS ClientHello, picks the backend by server name and
// splices the connection, replaying the bytes already read.
func proxyBySNI(c net.Conn, routes map[string]string) {
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	var seen bytes.Buffer
	sni, err := peekSNI(io.TeeReader(c, &seen))
	_ = c.SetReadDeadline(time.Time{})
	if err != nil {
		fmt.Fprintf(os.Stderr, "eastwest-gateway: %s: no TLS ClientHello: %v\n", c.RemoteAddr(), err)
		return
	}
	backend, ok := routes[sni]
	if !ok {
		fmt.Fprintf(os.Stderr, "eastwest-gateway: %s: no route for SNI %q\n", c.RemoteAddr(), sni)
		return
	}
	b, err := net.DialTimeout("tcp", backend, 5*time.Second)
	if err != nil {
		fmt.Fprintf(os.Stderr, "eastwest-gateway: %s: SNI %q → %s: %v\n", c.RemoteAddr(), sni, backend, err)
		return
	}
	defer b.Close()
	if _, err := b.Write(seen.Bytes()); err != nil {
		return
	}
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(b, c); closeWrite(b); done <- struct{}{} }()
	go func() { _, _ = io.Copy(c, b); closeWrite(c); done <- struct{}{} }()
	<-done
	<-done
}

func closeWrite(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.CloseWrite()
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

// startGateway runs the gateway process for every istiod revision and waits
// until istiod answers through it with its own certificate.
func (cp *ControlPlane) startGateway(ctx context.Context) error {
	ip := cp.opts.GatewayIP
	xds := map[string]string{}
	webhook := map[string]string{}
	for _, rev := range cp.opts.Revisions {
		host := istiodName(rev) + "." + IstioNamespace + ".svc"
		prefix := envPrefix(rev)
		xds[host] = cp.Get(prefix + "_XDS_ADDR")
		webhook[host] = cp.Get(prefix + "_WEBHOOK_ADDR")
	}
	first := istiodName(cp.opts.Revisions[0]) + "." + IstioNamespace + ".svc"
	xds[""], webhook[""] = xds[first], webhook[first]
	cfg := gatewayConfig{net.JoinHostPort(ip, "15012"): xds, net.JoinHostPort(ip, "15017"): webhook}
	raw, err := json.Marshal(cfg)
	if err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	cp.progress("starting eastwest-gateway on %s (15012, 15017)", ip)
	p, err := cp.startProcess("eastwest-gateway", cp.RunDir, append(baseEnv(), gatewayEnv+"="+string(raw)), self)
	if err != nil {
		return err
	}
	root, err := os.ReadFile(cp.Get("ISTIO_ROOT_CERT"))
	if err != nil {
		return err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(root)
	if err := cp.waitFor(ctx, p, "istiod TLS through "+net.JoinHostPort(ip, "15012"), func() error {
		for host := range xds {
			if host == "" {
				continue
			}
			conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 2 * time.Second}, "tcp", net.JoinHostPort(ip, "15012"),
				&tls.Config{RootCAs: pool, ServerName: host, NextProtos: []string{"h2"}})
			if err != nil {
				return fmt.Errorf("%s: %w", host, err)
			}
			conn.Close()
		}
		return nil
	}); err != nil {
		if !strings.Contains(tail(p.log, 20), "eastwest-gateway: listening") {
			return fmt.Errorf("%w\n(the program that starts the control plane must call controlplane.RunGatewayIfRequested() first in main/TestMain)", err)
		}
		return err
	}
	cp.setEnv("EASTWEST_GATEWAY_PID", fmt.Sprint(p.cmd.Process.Pid))
	return nil
}
