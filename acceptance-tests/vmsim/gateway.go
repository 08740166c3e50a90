package vmsim

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// Gateway is a TLS-passthrough TCP listener that routes by SNI, like the
// east-west gateway with samples/multicluster/expose-istiod.yaml (and
// expose-istiod-rev.yaml.tmpl, which matches SNI istiod-<rev>.istio-system.svc):
// the VM's TLS session goes through untouched to the istiod named by the
// ServerName, so the VM still verifies istiod's own certificate.
//
// The local control plane should expose istiod this way at
// <EASTWEST_GATEWAY_IP>:15012; tests use it as a stand-in when it does not.
type Gateway struct {
	Addr string

	l      net.Listener
	routes map[string]string
	wg     sync.WaitGroup
	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
}

// StartGateway listens on addr (e.g. 127.0.0.2:15012) and forwards each
// connection to routes[SNI] ("" is the route for clients that send no SNI).
func StartGateway(addr string, routes map[string]string) (*Gateway, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	g := &Gateway{Addr: l.Addr().String(), l: l, routes: routes, conns: map[net.Conn]struct{}{}}
	g.wg.Add(1)
	go g.serve()
	return g, nil
}

// Close stops listening and closes every proxied connection.
func (g *Gateway) Close() error {
	g.mu.Lock()
	g.closed = true
	for c := range g.conns {
		c.Close()
	}
	g.mu.Unlock()
	err := g.l.Close()
	g.wg.Wait()
	return err
}

func (g *Gateway) track(c net.Conn) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		c.Close()
		return false
	}
	g.conns[c] = struct{}{}
	return true
}

func (g *Gateway) untrack(c net.Conn) {
	g.mu.Lock()
	delete(g.conns, c)
	g.mu.Unlock()
	c.Close()
}

func (g *Gateway) serve() {
	defer g.wg.Done()
	for {
		c, err := g.l.Accept()
		if err != nil {
			return
		}
		if !g.track(c) {
			continue
		}
		g.wg.Add(1)
		go func() {
			defer g.wg.Done()
			defer g.untrack(c)
			g.proxy(c)
		}()
	}
}

var errSNIRead = errors.New("sni read")

// peekSNI reads the TLS ClientHello from c and returns its ServerName and
// the bytes read, which must be replayed to the backend.
func peekSNI(c net.Conn) (string, []byte, error) {
	var buf bytes.Buffer
	var sni string
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	err := tls.Server(readOnlyConn{r: io.TeeReader(c, &buf), Conn: c}, &tls.Config{
		GetConfigForClient: func(h *tls.ClientHelloInfo) (*tls.Config, error) {
			sni = h.ServerName
			return nil, errSNIRead
		},
	}).Handshake()
	_ = c.SetReadDeadline(time.Time{})
	if !errors.Is(err, errSNIRead) {
		return "", nil, fmt.Errorf("not a TLS ClientHello: %v", err)
	}
	return sni, buf.Bytes(), nil
}

// readOnlyConn lets crypto/tls read the ClientHello but never write.
type readOnlyConn struct {
	r io.Reader
	net.Conn
}

func (c readOnlyConn) Read(p []byte) (int, error)  { return c.r.Read(p) }
func (c readOnlyConn) Write(p []byte) (int, error) { return 0, io.ErrClosedPipe }

func (g *Gateway) proxy(c net.Conn) {
	sni, hello, err := peekSNI(c)
	if err != nil {
		return
	}
	backend, ok := g.routes[sni]
	if !ok {
		return // like a gateway with no matching route: connection reset
	}
	b, err := net.DialTimeout("tcp", backend, 5*time.Second)
	if err != nil {
		return
	}
	if !g.track(b) {
		return
	}
	defer g.untrack(b)
	if _, err := b.Write(hello); err != nil {
		return
	}
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(b, c); done <- struct{}{} }()
	go func() { _, _ = io.Copy(c, b); done <- struct{}{} }()
	<-done
}
