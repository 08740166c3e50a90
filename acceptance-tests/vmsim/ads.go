package vmsim

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/encoding/protojson"
)

// ListenerType is the LDS type URL: the first request after which the agent
// forwards health (`pkg/istio-agent/xds_proxy.go`).
const ListenerType = "type.googleapis.com/envoy.config.listener.v3.Listener"

// XDSStatus is the downstream ADS client's view of its stream through the
// agent to istiod.
type XDSStatus struct {
	// Connected is true while a stream is open.
	Connected bool
	// Streams counts streams opened (1 + reconnects).
	Streams int
	// Responses counts DiscoveryResponses received (over all streams).
	Responses int
	// LastError is the last stream error (for example istiod rejecting the
	// connection: "auto-registration WorkloadEntry of ... failed").
	LastError string
	// Types lists the response type URLs seen.
	Types map[string]int
}

// readNode reads the Node the agent wrote into GRPC_XDS_BOOTSTRAP (id,
// locality and metadata from ISTIO_META_*, INSTANCE_IPS, PROXY_CONFIG, ...).
// The proxyless "grpc" generator the agent adds there is removed: a VM runs
// Envoy, whose node has no generator.
func (vm *VM) readNode() (*core.Node, error) {
	raw, err := os.ReadFile(vm.grpcBootstrap())
	if err != nil {
		return nil, fmt.Errorf("vmsim: reading the agent's gRPC bootstrap: %w", err)
	}
	var b struct {
		Node json.RawMessage `json:"node"`
	}
	if err := json.Unmarshal(raw, &b); err != nil || len(b.Node) == 0 {
		return nil, fmt.Errorf("vmsim: no node in %s: %v", vm.grpcBootstrap(), err)
	}
	node := &core.Node{}
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(b.Node, node); err != nil {
		return nil, fmt.Errorf("vmsim: parsing node of %s: %w", vm.grpcBootstrap(), err)
	}
	if node.GetMetadata() != nil {
		delete(node.Metadata.Fields, "GENERATOR")
	}
	return node, nil
}

// Node returns the Node the ADS client sends.
func (vm *VM) Node() *core.Node { return vm.client.node }

// adsClient is the smallest downstream ADS client that makes the agent open
// and keep its upstream stream: one LDS request, then ACKs. It reconnects
// (after 1s) when the stream ends, as Envoy would.
type adsClient struct {
	socket string
	node   *core.Node
	log    io.WriteCloser

	mu sync.Mutex
	st XDSStatus
}

func newADSClient(socket string, node *core.Node, log io.WriteCloser) *adsClient {
	return &adsClient{socket: socket, node: node, log: log, st: XDSStatus{Types: map[string]int{}}}
}

func (c *adsClient) logf(format string, args ...any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	fmt.Fprintf(c.log, time.Now().Format(time.RFC3339Nano)+" "+format+"\n", args...)
}

func (c *adsClient) status() XDSStatus {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := c.st
	st.Types = map[string]int{}
	for k, v := range c.st.Types {
		st.Types[k] = v
	}
	return st
}

func (c *adsClient) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.log.Close()
}

func (c *adsClient) run(ctx context.Context) {
	nodeJSON, _ := protojson.Marshal(c.node)
	c.logf("node: %s", nodeJSON)
	for ctx.Err() == nil {
		err := c.stream(ctx)
		c.mu.Lock()
		c.st.Connected = false
		if err != nil {
			c.st.LastError = err.Error()
		}
		c.mu.Unlock()
		if ctx.Err() != nil {
			return
		}
		c.logf("stream ended: %v; reconnecting in 1s", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
}

func (c *adsClient) stream(ctx context.Context) error {
	conn, err := grpc.NewClient("unix://"+c.socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := discovery.NewAggregatedDiscoveryServiceClient(conn).StreamAggregatedResources(sctx)
	if err != nil {
		return err
	}
	if err := stream.Send(&discovery.DiscoveryRequest{Node: c.node, TypeUrl: ListenerType}); err != nil {
		return fmt.Errorf("sending LDS request: %w", err)
	}
	c.mu.Lock()
	c.st.Connected = true
	c.st.Streams++
	c.mu.Unlock()
	c.logf("stream open; sent LDS request")
	for {
		resp, err := stream.Recv()
		if err != nil {
			return err
		}
		c.mu.Lock()
		c.st.Responses++
		c.st.Types[resp.GetTypeUrl()]++
		c.mu.Unlock()
		c.logf("response type=%s version=%s nonce=%s resources=%d", resp.GetTypeUrl(), resp.GetVersionInfo(), resp.GetNonce(), len(resp.GetResources()))
		// ACK: same type, the version and nonce just received. (Only LDS was
		// asked for, with no resource names: a wildcard subscription.)
		ack := &discovery.DiscoveryRequest{
			TypeUrl:       resp.GetTypeUrl(),
			VersionInfo:   resp.GetVersionInfo(),
			ResponseNonce: resp.GetNonce(),
		}
		if err := stream.Send(ack); err != nil {
			return fmt.Errorf("sending ACK: %w", err)
		}
	}
}
