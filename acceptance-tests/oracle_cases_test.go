package acceptance

// The configurations of the validation oracle (oracle_validation_test.go): workload groups and
// the WorkloadEntries of registrations, valid and invalid, covering every attribute and its edge
// cases. Each case is written once, as Go values, and rendered twice: as the Terraform resource
// a user writes, and as the object the provider sends for it. The object follows the provider's
// mapping (src/resources/workload_group.rs spec_from_model, src/istio/entry.rs
// manual_workload_entry): empty strings and empty maps are left out, `template` is always sent.

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// groupSpec is one istio_workload_group configuration.
type groupSpec struct {
	Name                        string
	Labels, Annotations         map[string]string // the WorkloadGroup object's own
	HasMetadata                 bool
	MetaLabels, MetaAnnotations map[string]string
	Template                    *templateSpec
	Probe                       *probeSpec
}

type templateSpec struct {
	Address, Locality, Network, ServiceAccount *string
	Labels                                     map[string]string
	Ports                                      map[string]int64
	Weight                                     *int64
}

type probeSpec struct {
	InitialDelay, Timeout, Period, Success, Failure *int64
	HTTP                                            *httpProbe
	TCP                                             *tcpProbe
	Exec                                            *[]string
	GRPC                                            *grpcProbe
}

type httpProbe struct {
	Path, Host, Scheme *string
	Port               int64
	Headers            []httpHeader
}

// httpHeader is one probe header; a list, because a name may repeat.
type httpHeader struct{ Name, Value string }

type tcpProbe struct {
	Host *string
	Port int64
}

type grpcProbe struct {
	Port    *int64
	Service *string
}

// registrationSpec is one istio_vm_registration whose WorkloadEntry is judged: written by the
// provider in manual mode, by istiod (from the same group and the VM's metadata) in auto mode.
type registrationSpec struct {
	Group    string // one of oracleGroups
	Manual   bool
	Address  string // manual: the address attribute; auto: the VM's IP
	Network  *string
	Locality *string
	Weight   *int64
	Labels   map[string]string
}

func str(s string) *string { return &s }
func num(n int64) *int64   { return &n }

// ---- Terraform rendering ---------------------------------------------------------------------

func hclString(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`, "${", "$${", "%{", "%%{", "\n", `\n`).Replace(s) + `"`
}

func hclStringMap(m map[string]string) string {
	var b strings.Builder
	b.WriteString("{\n")
	for _, k := range sortedKeys(m) {
		fmt.Fprintf(&b, "    %s = %s\n", hclString(k), hclString(m[k]))
	}
	b.WriteString("  }")
	return b.String()
}

func hclNumberMap(m map[string]int64) string {
	var b strings.Builder
	b.WriteString("{\n")
	for _, k := range sortedKeys(m) {
		fmt.Fprintf(&b, "    %s = %d\n", hclString(k), m[k])
	}
	b.WriteString("  }")
	return b.String()
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

type hclBody struct{ b strings.Builder }

func (h *hclBody) str(name string, v *string) {
	if v != nil {
		fmt.Fprintf(&h.b, "  %s = %s\n", name, hclString(*v))
	}
}
func (h *hclBody) num(name string, v *int64) {
	if v != nil {
		fmt.Fprintf(&h.b, "  %s = %d\n", name, *v)
	}
}
func (h *hclBody) strMap(name string, m map[string]string) {
	if m != nil {
		fmt.Fprintf(&h.b, "  %s = %s\n", name, hclStringMap(m))
	}
}
func (h *hclBody) block(name, body string) { fmt.Fprintf(&h.b, "  %s {\n%s  }\n", name, indent(body)) }

func indent(s string) string {
	var out strings.Builder
	for _, line := range strings.SplitAfter(s, "\n") {
		if line != "" {
			out.WriteString("  " + line)
		}
	}
	return out.String()
}

func (g groupSpec) hcl(resource, namespace string) string {
	var h hclBody
	h.str("name", &g.Name)
	h.str("namespace", &namespace)
	h.strMap("labels", g.Labels)
	h.strMap("annotations", g.Annotations)
	if g.HasMetadata {
		var m hclBody
		m.strMap("labels", g.MetaLabels)
		m.strMap("annotations", g.MetaAnnotations)
		h.block("metadata", m.b.String())
	}
	if t := g.Template; t != nil {
		var m hclBody
		m.str("address", t.Address)
		m.str("locality", t.Locality)
		m.str("network", t.Network)
		m.str("service_account", t.ServiceAccount)
		m.strMap("labels", t.Labels)
		if t.Ports != nil {
			fmt.Fprintf(&m.b, "  ports = %s\n", hclNumberMap(t.Ports))
		}
		m.num("weight", t.Weight)
		h.block("template", m.b.String())
	}
	if p := g.Probe; p != nil {
		var m hclBody
		m.num("initial_delay_seconds", p.InitialDelay)
		m.num("timeout_seconds", p.Timeout)
		m.num("period_seconds", p.Period)
		m.num("success_threshold", p.Success)
		m.num("failure_threshold", p.Failure)
		if p.HTTP != nil {
			var x hclBody
			x.num("port", &p.HTTP.Port)
			x.str("path", p.HTTP.Path)
			x.str("host", p.HTTP.Host)
			x.str("scheme", p.HTTP.Scheme)
			for _, header := range p.HTTP.Headers {
				var hb hclBody
				hb.str("name", &header.Name)
				hb.str("value", &header.Value)
				x.block("http_header", hb.b.String())
			}
			m.block("http_get", x.b.String())
		}
		if p.TCP != nil {
			var x hclBody
			x.num("port", &p.TCP.Port)
			x.str("host", p.TCP.Host)
			m.block("tcp_socket", x.b.String())
		}
		if p.Exec != nil {
			quoted := make([]string, len(*p.Exec))
			for i, c := range *p.Exec {
				quoted[i] = hclString(c)
			}
			m.block("exec", "  command = ["+strings.Join(quoted, ", ")+"]\n")
		}
		if p.GRPC != nil {
			var x hclBody
			x.num("port", p.GRPC.Port)
			x.str("service", p.GRPC.Service)
			m.block("grpc", x.b.String())
		}
		h.block("probe", m.b.String())
	}
	return fmt.Sprintf("resource \"istio_workload_group\" %q {\n%s}\n", resource, h.b.String())
}

func (r registrationSpec) hcl(resource, namespace string) string {
	var h hclBody
	h.str("workload_group", str(namespace+"/"+r.Group))
	if r.Manual {
		h.str("mode", str("manual"))
		h.str("address", &r.Address)
	}
	h.str("network", r.Network)
	h.str("locality", r.Locality)
	h.num("weight", r.Weight)
	h.strMap("labels", r.Labels)
	return fmt.Sprintf("resource \"istio_vm_registration\" %q {\n%s}\n", resource, h.b.String())
}

// ---- Kubernetes objects ----------------------------------------------------------------------

func putString(m map[string]any, key string, v *string) {
	if v != nil && *v != "" {
		m[key] = *v
	}
}

func putInt(m map[string]any, key string, v *int64) {
	if v != nil {
		m[key] = *v
	}
}

func putStringMap(m map[string]any, key string, v map[string]string) {
	if len(v) > 0 {
		out := map[string]any{}
		for k, val := range v {
			out[k] = val
		}
		m[key] = out
	}
}

func (t *templateSpec) object() map[string]any {
	out := map[string]any{}
	if t == nil {
		return out
	}
	putString(out, "address", t.Address)
	putString(out, "locality", t.Locality)
	putString(out, "network", t.Network)
	putString(out, "serviceAccount", t.ServiceAccount)
	putStringMap(out, "labels", t.Labels)
	if len(t.Ports) > 0 {
		ports := map[string]any{}
		for k, v := range t.Ports {
			ports[k] = v
		}
		out["ports"] = ports
	}
	putInt(out, "weight", t.Weight)
	return out
}

func (p *probeSpec) object() map[string]any {
	out := map[string]any{}
	putInt(out, "initialDelaySeconds", p.InitialDelay)
	putInt(out, "timeoutSeconds", p.Timeout)
	putInt(out, "periodSeconds", p.Period)
	putInt(out, "successThreshold", p.Success)
	putInt(out, "failureThreshold", p.Failure)
	if h := p.HTTP; h != nil {
		m := map[string]any{"port": h.Port}
		putString(m, "path", h.Path)
		putString(m, "host", h.Host)
		putString(m, "scheme", h.Scheme)
		if len(h.Headers) > 0 {
			var headers []any
			for _, h := range h.Headers {
				header := map[string]any{}
				putString(header, "name", str(h.Name))
				putString(header, "value", str(h.Value))
				headers = append(headers, header)
			}
			m["httpHeaders"] = headers
		}
		out["httpGet"] = m
	}
	if t := p.TCP; t != nil {
		m := map[string]any{"port": t.Port}
		putString(m, "host", t.Host)
		out["tcpSocket"] = m
	}
	if e := p.Exec; e != nil {
		command := make([]any, len(*e))
		for i, c := range *e {
			command[i] = c
		}
		out["exec"] = map[string]any{"command": command}
	}
	if g := p.GRPC; g != nil {
		m := map[string]any{}
		putInt(m, "port", g.Port)
		putString(m, "service", g.Service)
		out["grpc"] = m
	}
	return out
}

func (g groupSpec) object(namespace string) map[string]any {
	meta := map[string]any{"name": g.Name, "namespace": namespace}
	putStringMap(meta, "labels", g.Labels)
	putStringMap(meta, "annotations", g.Annotations)
	spec := map[string]any{"template": g.Template.object()}
	if g.HasMetadata {
		m := map[string]any{}
		putStringMap(m, "labels", g.MetaLabels)
		putStringMap(m, "annotations", g.MetaAnnotations)
		spec["metadata"] = m
	}
	if g.Probe != nil {
		spec["probe"] = g.Probe.object()
	}
	return map[string]any{"apiVersion": "networking.istio.io/v1", "kind": "WorkloadGroup", "metadata": meta, "spec": spec}
}

// entryName is the name istiod gives an auto-registered entry and the provider a manual one:
// <group>-<ip>[-<network>], ':' as '-', keeping the last 253 characters
// (pilot/pkg/autoregistration/controller.go).
func entryName(group, ip, network string) string {
	name := group + "-" + strings.ReplaceAll(ip, ":", "-")
	if network != "" {
		name += "-" + network
	}
	if len(name) > 253 {
		name = name[len(name)-253:]
	}
	return name
}

// entryObject is the WorkloadEntry of a registration built from its group (already in the
// cluster, uid known): the template with the registration's values, labels merged template ←
// metadata ← registration, the registration label, and for auto mode istiod's annotation.
func (r registrationSpec) entryObject(namespace string, group groupSpec, groupUID string) map[string]any {
	t := group.Template
	if t == nil {
		t = &templateSpec{}
	}
	spec := t.object()
	spec["address"] = r.Address
	network := ""
	if t.Network != nil {
		network = *t.Network
	}
	if r.Network != nil && *r.Network != "" {
		network = *r.Network
		spec["network"] = network
	}
	if r.Locality != nil && *r.Locality != "" {
		spec["locality"] = *r.Locality
	}
	if r.Weight != nil {
		spec["weight"] = *r.Weight
	}
	labels := map[string]string{}
	for _, m := range []map[string]string{t.Labels, group.MetaLabels, r.Labels} {
		for k, v := range m {
			labels[k] = v
		}
	}
	labels["terraform-provider-istio/registration"] = "oracle0000"
	if !r.Manual {
		// istiod takes the labels from the VM's ISTIO_METAJSON_LABELS, which carry the
		// canonical service labels (istioctl/pkg/workload/workload.go, labels.CanonicalService).
		labels["service.istio.io/canonical-name"] = firstLabel(labels, group.Name, "service.istio.io/canonical-name", "app.kubernetes.io/name", "app")
		labels["service.istio.io/canonical-revision"] = firstLabel(labels, "latest", "service.istio.io/canonical-revision", "app.kubernetes.io/version", "version")
	}
	putStringMap(spec, "labels", labels)
	annotations := map[string]string{}
	for k, v := range group.MetaAnnotations {
		annotations[k] = v
	}
	if group.Probe != nil {
		annotations["proxy.istio.io/health-checks-enabled"] = "true"
	}
	if !r.Manual {
		annotations["istio.io/autoRegistrationGroup"] = group.Name
	}
	meta := map[string]any{
		"name":      entryName(group.Name, r.Address, network),
		"namespace": namespace,
		"ownerReferences": []any{map[string]any{
			"apiVersion": "networking.istio.io/v1", "kind": "WorkloadGroup", "name": group.Name, "uid": groupUID, "controller": true,
		}},
	}
	putStringMap(meta, "labels", labels)
	putStringMap(meta, "annotations", annotations)
	return map[string]any{"apiVersion": "networking.istio.io/v1", "kind": "WorkloadEntry", "metadata": meta, "spec": spec}
}

func firstLabel(labels map[string]string, fallback string, keys ...string) string {
	for _, k := range keys {
		if v, ok := labels[k]; ok {
			return v
		}
	}
	return fallback
}

// ---- generated values ------------------------------------------------------------------------

func repeatTo(prefix string, n int) string {
	if len(prefix) >= n {
		return prefix[:n]
	}
	return prefix + strings.Repeat("a", n-len(prefix))
}

func oracleLabels(n int) map[string]string {
	m := map[string]string{}
	for i := 0; i < n; i++ {
		m["k"+strconv.Itoa(i)] = "v"
	}
	return m
}

func oraclePorts(n int) map[string]int64 {
	m := map[string]int64{}
	for i := 0; i < n; i++ {
		m["p"+strconv.Itoa(i)] = int64(10000 + i)
	}
	return m
}

// labelEdges are label maps around the Kubernetes rules for keys and values.
var labelEdges = []struct {
	name   string
	labels map[string]string
}{
	{"plain", map[string]string{"app": "product"}},
	{"empty-map", map[string]string{}},
	{"prefixed-key", map[string]string{"example.com/tier": "web"}},
	{"key-63", map[string]string{repeatTo("k", 63): "v"}},
	{"key-64", map[string]string{repeatTo("k", 64): "v"}},
	{"prefix-253", map[string]string{repeatTo("p", 249) + ".com/k": "v"}},
	{"prefix-254", map[string]string{repeatTo("p", 250) + ".com/k": "v"}},
	{"uppercase-key", map[string]string{"App": "x"}},
	{"uppercase-prefix", map[string]string{"Example.com/k": "x"}},
	{"two-slashes", map[string]string{"a/b/c": "x"}},
	{"empty-key", map[string]string{"": "x"}},
	{"key-with-space", map[string]string{"bad key": "x"}},
	{"key-underscore-dot", map[string]string{"a_b.c-d": "x"}},
	{"empty-value", map[string]string{"k": ""}},
	{"value-63", map[string]string{"k": repeatTo("v", 63)}},
	{"value-64", map[string]string{"k": repeatTo("v", 64)}},
	{"value-uppercase", map[string]string{"k": "V1"}},
	{"value-with-space", map[string]string{"k": "a b"}},
	{"value-leading-dash", map[string]string{"k": "-v"}},
	{"value-slash", map[string]string{"k": "a/b"}},
	{"count-256", oracleLabels(256)},
	{"count-257", oracleLabels(257)},
}

// oracleCase is one configuration: a workload group, or a registration of one of oracleGroups.
type oracleCase struct {
	ID           string
	Group        *groupSpec
	Registration *registrationSpec
}

// baseGroup is a valid group every group case varies one thing of.
func baseGroup(name string) groupSpec {
	return groupSpec{
		Name:        name,
		HasMetadata: true,
		MetaLabels:  map[string]string{"app": "product"},
		Template:    &templateSpec{ServiceAccount: str("default"), Ports: map[string]int64{"http": 8080}},
		Probe:       &probeSpec{HTTP: &httpProbe{Port: 8080}},
	}
}

// groupCases covers every attribute of istio_workload_group and its edge cases.
func groupCases() []oracleCase {
	var cases []oracleCase
	n := 0
	add := func(id string, mutate func(*groupSpec)) {
		n++
		g := baseGroup(fmt.Sprintf("g%03d", n))
		mutate(&g)
		cases = append(cases, oracleCase{ID: "group/" + id, Group: &g})
	}

	add("base", func(*groupSpec) {})
	add("minimal-no-blocks", func(g *groupSpec) { g.HasMetadata, g.MetaLabels, g.Template, g.Probe = false, nil, nil, nil })
	add("no-probe", func(g *groupSpec) { g.Probe = nil })
	add("empty-template", func(g *groupSpec) { g.Template = &templateSpec{} })
	add("empty-metadata", func(g *groupSpec) { g.MetaLabels = nil })

	// name: a DNS-1123 subdomain.
	for _, c := range []struct{ id, name string }{
		{"1", "a"}, {"63", repeatTo("g", 63)}, {"64", repeatTo("g", 64)}, {"253", repeatTo("g", 253)},
		{"254", repeatTo("g", 254)}, {"uppercase", "Product"}, {"dots", "product.vm"}, {"double-dot", "a..b"},
		{"leading-dash", "-a"}, {"trailing-dash", "a-"}, {"underscore", "a_b"}, {"digits", "123"}, {"empty", ""},
	} {
		name := c.name
		add("name/"+c.id, func(g *groupSpec) { g.Name = name })
	}

	// labels and annotations: the object's own, spec.metadata's and template's.
	for _, e := range labelEdges {
		labels := e.labels
		add("labels/"+e.name, func(g *groupSpec) { g.Labels = labels })
		add("metadata.labels/"+e.name, func(g *groupSpec) { g.MetaLabels = labels })
		add("template.labels/"+e.name, func(g *groupSpec) { g.Template.Labels = labels })
	}
	for _, c := range []struct {
		id string
		m  map[string]string
	}{
		{"plain", map[string]string{"example.com/owner": "team a"}},
		{"empty-value", map[string]string{"k": ""}},
		{"key-with-space", map[string]string{"bad key": "x"}},
		{"key-64", map[string]string{repeatTo("k", 64): "x"}},
		{"uppercase-key", map[string]string{"Owner": "x"}},
		{"long-value", map[string]string{"k": strings.Repeat("x", 4096)}},
		{"count-257", oracleLabels(257)},
	} {
		m := c.m
		add("annotations/"+c.id, func(g *groupSpec) { g.Annotations = m })
		add("metadata.annotations/"+c.id, func(g *groupSpec) { g.MetaAnnotations = m })
	}

	// template
	for _, c := range []struct {
		id    string
		ports map[string]int64
	}{
		{"none", nil}, {"empty", map[string]int64{}}, {"two", map[string]int64{"http": 8080, "grpc": 9090}},
		{"count-128", oraclePorts(128)}, {"count-129", oraclePorts(129)},
		{"name-62", map[string]int64{repeatTo("p", 62): 80}}, {"name-63", map[string]int64{repeatTo("p", 63): 80}},
		{"name-64", map[string]int64{repeatTo("p", 64): 80}}, {"name-uppercase", map[string]int64{"HTTP": 80}},
		{"name-mixed-case", map[string]int64{"Http-Web": 80}}, {"name-underscore", map[string]int64{"http_web": 80}},
		{"name-leading-dash", map[string]int64{"-http": 80}}, {"name-trailing-dash", map[string]int64{"http-": 80}},
		{"name-digits", map[string]int64{"8080": 80}}, {"name-dot", map[string]int64{"http.web": 80}},
		{"name-empty", map[string]int64{"": 80}},
		{"port-0", map[string]int64{"http": 0}}, {"port-1", map[string]int64{"http": 1}},
		{"port-65535", map[string]int64{"http": 65535}}, {"port-65536", map[string]int64{"http": 65536}},
		{"port-negative", map[string]int64{"http": -1}}, {"port-u32-max", map[string]int64{"http": 4294967295}},
	} {
		ports := c.ports
		add("template.ports/"+c.id, func(g *groupSpec) { g.Template.Ports = ports })
	}
	for _, w := range []int64{-1, 0, 1, 100, 4294967295, 4294967296} {
		w := w
		add(fmt.Sprintf("template.weight/%d", w), func(g *groupSpec) { g.Template.Weight = &w })
	}
	for _, c := range []struct{ id, v string }{
		{"empty", ""}, {"plain", "product"}, {"uppercase", "Product"}, {"dots", "product.vm"}, {"underscore", "product_vm"},
		{"63", repeatTo("s", 63)}, {"64", repeatTo("s", 64)}, {"253", repeatTo("s", 253)}, {"254", repeatTo("s", 254)},
	} {
		v := c.v
		add("template.service_account/"+c.id, func(g *groupSpec) { g.Template.ServiceAccount = &v })
	}
	for _, c := range networkEdges {
		v := c.v
		add("template.network/"+c.id, func(g *groupSpec) { g.Template.Network = &v })
	}
	for _, c := range localityEdges {
		v := c.v
		add("template.locality/"+c.id, func(g *groupSpec) { g.Template.Locality = &v })
	}
	for _, c := range []struct{ id, v string }{
		{"empty", ""}, {"ipv4", "10.0.0.1"}, {"ipv6", "2001:db8::1"}, {"fqdn", "vm.example.com"}, {"uppercase-fqdn", "VM.example.com"},
		{"unix-absolute", "unix:///var/run/app.sock"}, {"unix-abstract", "unix://@app"}, {"unix-relative", "unix://app.sock"},
		{"unix-dir", "unix:///var/run/"}, {"256", repeatTo("a", 256)}, {"257", repeatTo("a", 257)}, {"bad-chars", "bad host!"},
	} {
		v := c.v
		add("template.address/"+c.id, func(g *groupSpec) { g.Template.Address = &v })
	}
	// A Unix socket address without ports (the CRD forbids ports next to one).
	for _, c := range []struct{ id, v string }{{"unix-absolute", "unix:///var/run/app.sock"}, {"unix-relative", "unix://app.sock"}} {
		v := c.v
		add("template.address-no-ports/"+c.id, func(g *groupSpec) { g.Template.Address, g.Template.Ports = &v, nil })
	}

	// probe: thresholds, every handler and its fields.
	for _, field := range []string{"initial_delay_seconds", "timeout_seconds", "period_seconds", "success_threshold", "failure_threshold"} {
		for _, v := range []int64{-1, 0, 1, 2147483647, 2147483648} {
			field, v := field, v
			add(fmt.Sprintf("probe.%s/%d", field, v), func(g *groupSpec) {
				p := g.Probe
				switch field {
				case "initial_delay_seconds":
					p.InitialDelay = &v
				case "timeout_seconds":
					p.Timeout = &v
				case "period_seconds":
					p.Period = &v
				case "success_threshold":
					p.Success = &v
				case "failure_threshold":
					p.Failure = &v
				}
			})
		}
	}
	add("probe/no-handler", func(g *groupSpec) { g.Probe = &probeSpec{Period: num(5)} })
	add("probe/http-and-tcp", func(g *groupSpec) { g.Probe.TCP = &tcpProbe{Port: 8080} })
	add("probe/exec-and-grpc", func(g *groupSpec) {
		g.Probe = &probeSpec{Exec: &[]string{"true"}, GRPC: &grpcProbe{Port: num(9090)}}
	})
	for _, p := range []int64{-1, 0, 1, 65535, 65536} {
		p := p
		add(fmt.Sprintf("probe.http_get.port/%d", p), func(g *groupSpec) { g.Probe.HTTP.Port = p })
		add(fmt.Sprintf("probe.tcp_socket.port/%d", p), func(g *groupSpec) { g.Probe = &probeSpec{TCP: &tcpProbe{Port: p}} })
		add(fmt.Sprintf("probe.grpc.port/%d", p), func(g *groupSpec) { g.Probe = &probeSpec{GRPC: &grpcProbe{Port: &p}} })
	}
	add("probe.grpc/no-port", func(g *groupSpec) { g.Probe = &probeSpec{GRPC: &grpcProbe{Service: str("grpc.health.v1.Health")}} })
	add("probe.grpc/port-and-service", func(g *groupSpec) {
		g.Probe = &probeSpec{GRPC: &grpcProbe{Port: num(9090), Service: str("svc")}}
	})
	for _, c := range []struct{ id, v string }{
		{"empty", ""}, {"HTTP", "HTTP"}, {"HTTPS", "HTTPS"}, {"lowercase-http", "http"}, {"lowercase-https", "https"}, {"FTP", "FTP"}, {"TCP", "TCP"},
	} {
		v := c.v
		add("probe.http_get.scheme/"+c.id, func(g *groupSpec) { g.Probe.HTTP.Scheme = &v })
	}
	for _, c := range []struct{ id, v string }{{"empty", ""}, {"absolute", "/ready"}, {"no-slash", "ready"}, {"query", "/ready?full=1"}, {"space", "/a b"}} {
		v := c.v
		add("probe.http_get.path/"+c.id, func(g *groupSpec) { g.Probe.HTTP.Path = &v })
	}
	for _, c := range []struct{ id, v string }{{"empty", ""}, {"ip", "127.0.0.1"}, {"name", "localhost"}, {"space", "bad host"}} {
		v := c.v
		add("probe.http_get.host/"+c.id, func(g *groupSpec) { g.Probe.HTTP.Host = &v })
		add("probe.tcp_socket.host/"+c.id, func(g *groupSpec) { g.Probe = &probeSpec{TCP: &tcpProbe{Port: 8080, Host: &v}} })
	}
	for _, c := range []struct {
		id string
		h  []httpHeader
	}{
		{"plain", []httpHeader{{"X-Custom", "1"}}}, {"lowercase", []httpHeader{{"x-custom", "1"}}},
		{"underscore", []httpHeader{{"X_Custom", "1"}}}, {"space", []httpHeader{{"X Custom", "1"}}},
		{"colon-pseudo", []httpHeader{{":authority", "a"}}}, {"empty-name", []httpHeader{{"", "1"}}},
		{"empty-value", []httpHeader{{"X-Empty", ""}}}, {"host", []httpHeader{{"Host", "example.com"}}},
		{"several", []httpHeader{{"A", "1"}, {"B", "2"}, {"C-D", "3"}}}, {"dot", []httpHeader{{"x.y", "1"}}},
		{"value-with-newline", []httpHeader{{"X-A", "a\nb"}}},
		{"repeated-name", []httpHeader{{"X-Trace", "a"}, {"X-Trace", "b"}}},
		{"repeated-bad-name", []httpHeader{{"X-Ok", "a"}, {"X_Bad", "b"}, {"X_Bad", "c"}}},
	} {
		h := c.h
		add("probe.http_get.http_header/"+c.id, func(g *groupSpec) { g.Probe.HTTP.Headers = h })
	}
	for _, c := range []struct {
		id string
		c  []string
	}{
		{"one", []string{"true"}}, {"args", []string{"cat", "/ready"}}, {"empty-list", []string{}},
		{"empty-string", []string{""}}, {"empty-first", []string{"", "x"}}, {"empty-arg", []string{"test", ""}},
		{"long", []string{"sh", "-c", strings.Repeat("x", 4096)}},
	} {
		command := c.c
		add("probe.exec.command/"+c.id, func(g *groupSpec) { g.Probe = &probeSpec{Exec: &command} })
	}
	return cases
}

var networkEdges = []struct{ id, v string }{
	{"empty", ""}, {"plain", "network1"}, {"uppercase", "Network1"}, {"dots", "net.east"}, {"underscore", "net_east"},
	{"slash", "net/east"}, {"space", "net east"}, {"63", repeatTo("n", 63)}, {"64", repeatTo("n", 64)},
	{"2048", repeatTo("n", 2048)}, {"2049", repeatTo("n", 2049)}, {"leading-dash", "-net"},
}

var localityEdges = []struct{ id, v string }{
	{"empty", ""}, {"region", "us-east1"}, {"region-zone-subzone", "us-east1/us-east1-b/rack1"}, {"uppercase", "US-East/Zone-B"},
	{"four-parts", "a/b/c/d"}, {"empty-zone", "us//rack1"}, {"dots", "eu.west/zone.a"}, {"space", "us east"},
	{"2048", repeatTo("l", 2048)}, {"2049", repeatTo("l", 2049)},
}

// oracleGroups are created in the cluster before the registration cases: their template decides
// what each entry inherits (ports, labels, network).
var oracleGroups = map[string]groupSpec{
	"reg-base": baseGroup("reg-base"),
	"reg-upper-port": func() groupSpec {
		g := baseGroup("reg-upper-port")
		g.Template.Ports = map[string]int64{"HTTP": 8080}
		return g
	}(),
	"reg-network": func() groupSpec {
		g := baseGroup("reg-network")
		g.Template.Network = str("net-template")
		return g
	}(),
	"reg-bad-template-label": func() groupSpec {
		g := baseGroup("reg-bad-template-label")
		g.Template.Labels = map[string]string{"bad key": "x"}
		return g
	}(),
}

// registrationCases covers the attributes of istio_vm_registration that reach the entry, in
// manual mode (our entry) and auto mode (istiod's entry, named from the VM's IP and network).
func registrationCases() []oracleCase {
	var cases []oracleCase
	add := func(id string, r registrationSpec) {
		cases = append(cases, oracleCase{ID: "registration/" + id, Registration: &r})
	}
	for _, manual := range []bool{true, false} {
		mode := "auto"
		if manual {
			mode = "manual"
		}
		base := func() registrationSpec {
			return registrationSpec{Group: "reg-base", Manual: manual, Address: "10.20.0.1"}
		}
		add(mode+"/base", base())
		for _, c := range networkEdges {
			r := base()
			r.Network = str(c.v)
			add(mode+"/network/"+c.id, r)
		}
		for _, c := range localityEdges {
			r := base()
			r.Locality = str(c.v)
			add(mode+"/locality/"+c.id, r)
		}
		for _, e := range labelEdges {
			r := base()
			r.Labels = e.labels
			add(mode+"/labels/"+e.name, r)
		}
		for _, w := range []int64{-1, 0, 1, 4294967295, 4294967296} {
			r := base()
			r.Weight = num(w)
			add(fmt.Sprintf("%s/weight/%d", mode, w), r)
		}
		for _, g := range []string{"reg-upper-port", "reg-network", "reg-bad-template-label"} {
			r := base()
			r.Group = g
			add(mode+"/group/"+g, r)
		}
		for _, c := range []struct{ id, v string }{
			{"ipv6", "2001:db8::7"}, {"ipv4-mapped", "::ffff:10.0.0.1"}, {"long-network-name", "10.20.0.2"},
		} {
			r := base()
			r.Address = c.v
			if c.id == "long-network-name" {
				r.Network = str(repeatTo("n", 250))
			}
			add(mode+"/address/"+c.id, r)
		}
	}
	// Manual mode only: the address attribute itself.
	for _, c := range []struct{ id, v string }{
		{"empty", ""}, {"fqdn", "vm.example.com"}, {"not-ip", "10.0.0"}, {"unix", "unix:///var/run/app.sock"},
	} {
		add("manual/address/"+c.id, registrationSpec{Group: "reg-base", Manual: true, Address: c.v})
	}
	return cases
}

func oracleValidationCases() []oracleCase {
	return append(groupCases(), registrationCases()...)
}
