// Command rpcbench measures per-RPC round-trip time of plugin-protocol-6 providers directly,
// with the same client stack Terraform uses (hashicorp/go-plugin: subprocess, handshake, unix
// socket, AutoMTLS, gRPC). It times ValidateProviderConfig with an identical request for every
// provider (both bench providers have the same provider schema: one optional string `prefix`),
// GetProviderSchema (response size differs per provider), and provider start-up (launch to
// connected client). Blocks of calls alternate between the providers to spread machine noise.
//
//	rpcbench -calls 2000 -blocks 5 -starts 10 ours=/path/to/provider peer=/path/to/other
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"os/exec"
	"sort"
	"strings"
	"time"

	hclog "github.com/hashicorp/go-hclog"
	plugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
)

// rawPlugin hands back the gRPC connection itself.
type rawPlugin struct{ plugin.NetRPCUnsupportedPlugin }

func (rawPlugin) GRPCServer(*plugin.GRPCBroker, *grpc.Server) error { return fmt.Errorf("client only") }
func (rawPlugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, c *grpc.ClientConn) (interface{}, error) {
	return c, nil
}

// rawCodec sends and receives already-encoded protobuf bytes.
type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error) { return *(v.(*[]byte)), nil }
func (rawCodec) Unmarshal(data []byte, v any) error {
	*(v.(*[]byte)) = append([]byte(nil), data...)
	return nil
}
func (rawCodec) Name() string { return "proto" }

// ValidateProviderConfig.Request{config: DynamicValue{msgpack: {"prefix": null}}}:
// field 1 (config, bytes) → DynamicValue field 1 (msgpack, bytes) → fixmap(1) "prefix" nil.
var validateProviderConfigReq = func() []byte {
	mp := append([]byte{0x81, 0xa6}, []byte("prefix")...)
	mp = append(mp, 0xc0)
	dv := append([]byte{0x0a, byte(len(mp))}, mp...)
	return append([]byte{0x0a, byte(len(dv))}, dv...)
}()

type provider struct {
	name, path string
	client     *plugin.Client
	conn       *grpc.ClientConn
}

func start(name, path string) (*provider, time.Duration, error) {
	t0 := time.Now()
	c := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig: plugin.HandshakeConfig{
			MagicCookieKey:   "TF_PLUGIN_MAGIC_COOKIE",
			MagicCookieValue: "d602bf8f470bc67ca7faa0386276bbdd4330efaf76d1a219cb4d6991ca9872b2",
		},
		VersionedPlugins: map[int]plugin.PluginSet{6: {"provider": rawPlugin{}}},
		Cmd:              exec.Command(path),
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		AutoMTLS:         true,
		Managed:          true,
		SyncStdout:       io.Discard,
		SyncStderr:       io.Discard,
		Logger:           hclog.New(&hclog.LoggerOptions{Level: hclog.Off, Output: io.Discard}),
	})
	cp, err := c.Client()
	if err != nil {
		c.Kill()
		return nil, 0, err
	}
	raw, err := cp.Dispense("provider")
	if err != nil {
		c.Kill()
		return nil, 0, err
	}
	return &provider{name: name, path: path, client: c, conn: raw.(*grpc.ClientConn)}, time.Since(t0), nil
}

func (p *provider) call(method string, req []byte) (time.Duration, int, error) {
	var resp []byte
	t0 := time.Now()
	err := p.conn.Invoke(context.Background(), "/tfplugin6.Provider/"+method, &req, &resp, grpc.ForceCodec(rawCodec{}))
	return time.Since(t0), len(resp), err
}

type stats struct{ d []time.Duration }

func (s *stats) add(d time.Duration) { s.d = append(s.d, d) }
func (s *stats) summary() string {
	sort.Slice(s.d, func(i, j int) bool { return s.d[i] < s.d[j] })
	var sum time.Duration
	for _, d := range s.d {
		sum += d
	}
	us := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1000 }
	q := func(f float64) time.Duration { return s.d[int(f*float64(len(s.d)-1))] }
	return fmt.Sprintf("%d %.1f %.1f %.1f %.1f", len(s.d), us(q(0.5)), us(sum/time.Duration(len(s.d))), us(q(0.9)), us(q(0.99)))
}

// fatal kills every provider this program started (they would outlive it otherwise) and exits.
func fatal(format string, args ...any) {
	plugin.CleanupClients()
	log.Fatalf(format, args...)
}

func main() {
	calls := flag.Int("calls", 2000, "ValidateProviderConfig calls per block")
	schemaCalls := flag.Int("schema-calls", 200, "GetProviderSchema calls per block")
	blocks := flag.Int("blocks", 5, "alternating blocks per provider")
	starts := flag.Int("starts", 10, "provider launches per provider for start-up time")
	flag.Parse()
	var provs []*provider
	names := []string{}
	paths := map[string]string{}
	for _, arg := range flag.Args() {
		name, path, ok := strings.Cut(arg, "=")
		if !ok {
			fatal("argument %q is not name=path", arg)
		}
		names = append(names, name)
		paths[name] = path
	}
	startStats := map[string]*stats{}
	for i := 0; i < *starts; i++ {
		for _, n := range names {
			p, d, err := start(n, paths[n])
			if err != nil {
				fatal("%s: start: %v", n, err)
			}
			if _, _, err := p.call("GetProviderSchema", nil); err != nil {
				fatal("%s: GetProviderSchema: %v", n, err)
			}
			p.client.Kill()
			if startStats[n] == nil {
				startStats[n] = &stats{}
			}
			startStats[n].add(d)
		}
	}
	for _, n := range names {
		p, _, err := start(n, paths[n])
		if err != nil {
			fatal("%s: start: %v", n, err)
		}
		provs = append(provs, p)
	}
	vpc := map[string]*stats{}
	gps := map[string]*stats{}
	schemaBytes := map[string]int{}
	for _, p := range provs { // warm-up
		for i := 0; i < 200; i++ {
			if _, _, err := p.call("ValidateProviderConfig", validateProviderConfigReq); err != nil {
				fatal("%s: ValidateProviderConfig: %v", p.name, err)
			}
		}
		vpc[p.name], gps[p.name] = &stats{}, &stats{}
	}
	for b := 0; b < *blocks; b++ {
		order := provs
		if b%2 == 1 {
			order = []*provider{}
			for i := len(provs) - 1; i >= 0; i-- {
				order = append(order, provs[i])
			}
		}
		for _, p := range order {
			for i := 0; i < *calls; i++ {
				d, _, err := p.call("ValidateProviderConfig", validateProviderConfigReq)
				if err != nil {
					fatal("%s: %v", p.name, err)
				}
				vpc[p.name].add(d)
			}
			for i := 0; i < *schemaCalls; i++ {
				d, n, err := p.call("GetProviderSchema", nil)
				if err != nil {
					fatal("%s: %v", p.name, err)
				}
				gps[p.name].add(d)
				schemaBytes[p.name] = n
			}
		}
	}
	// Output: one line per provider and measurement: name what n median_us mean_us p90_us p99_us [bytes]
	for _, p := range provs {
		fmt.Printf("%s ValidateProviderConfig %s\n", p.name, vpc[p.name].summary())
		fmt.Printf("%s GetProviderSchema %s %d\n", p.name, gps[p.name].summary(), schemaBytes[p.name])
		fmt.Printf("%s start %s\n", p.name, startStats[p.name].summary())
	}
	// Kill (graceful Shutdown, then wait for exit) so a wrapper sees each provider exit.
	for _, p := range provs {
		p.client.Kill()
	}
}
