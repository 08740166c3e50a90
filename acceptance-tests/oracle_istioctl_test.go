package acceptance

// istioctl as the oracle of the VM bundle (issue 9 item 5): for a registration the provider applied,
// `istioctl x workload entry configure` runs with the same group and the flags a user would
// pass for the same attributes, against the same cluster, and the two bundles are compared key
// by key: cluster.env as KEY=value pairs, mesh.yaml parsed, hosts and root-cert.pem byte for
// byte, the token by audience, subject and lifetime. istioctlDifferences is the one list of
// deliberate differences (also in docs/guides/istioctl-differences.md).

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"terraform-provider-istio/acceptance-tests/controlplane"
)

// istioctlDifference is a deliberate difference between our bundle and istioctl's.
type istioctlDifference struct {
	// Where: file and key (a proxyMetadata key in mesh.yaml also reaches cluster.env).
	File, Key string
	// When it applies.
	When string
	// What we do instead and why.
	Reason string
}

// istioctlDifferences are every difference the comparison accepts; anything else fails.
var istioctlDifferences = []istioctlDifference{
	{"mesh.yaml, cluster.env", "ISTIO_META_WORKLOAD_ENTRY", "`mode = \"manual\"`",
		"Ours only: names the WorkloadEntry the provider created, so istiod attaches the VM's proxy and its health reports to that entry. istioctl has no manual mode (its user creates the entry by hand and writes no such key)."},
	{"mesh.yaml, cluster.env", "ISTIO_METAJSON_LABELS", "always",
		"Ours adds the label `terraform-provider-istio/registration=<id>`, by which the provider finds the entry istiod auto-registers for this registration (and its health). All other labels are the same."},
	{"cluster.env", "ISTIO_INBOUND_PORTS", "more than one port",
		"Same ports; ours are in a stable order (by port name) so that `bundle_sha256` only changes when a file really changes. istioctl walks a Go map, so its order changes from run to run."},
	{"istio-token", "", "always",
		"A fresh token per issue: both have audience `istio-ca`, subject `system:serviceaccount:<namespace>:<service_account>` and the same lifetime. Ours is bound to a Secret (so destroy revokes it); istioctl's is not bound."},
	{"mesh.yaml, cluster.env", "ISTIOD_SAN", "`istiod_address` set, or a gateway with only a hostname",
		"Ours only: the VM dials `istiod_address` (or the gateway's hostname) but verifies istiod's certificate by istiod's own name (`istiod[-<revision>].<istio namespace>.svc`). An istioctl user would add it under `proxyMetadata` in the group's `proxy.istio.io/config` annotation, which makes the pinned istioctl panic when the mesh config has no `proxyMetadata` (nil map, `istioctl/pkg/workload/workload.go` createMeshConfig)."},
	{"mesh.yaml", "discoveryAddress", "a gateway with only a hostname",
		"Ours is the gateway's hostname with port 15012, and the hosts file of both is empty. istioctl cannot use a load balancer that reports a DNS name (`createHosts`: \"TODO: add case where the load balancer is a DNS name\"): it warns, writes an empty hosts file and keeps `istiod[-<revision>].<istio namespace>.svc:15012`, a name such a VM cannot resolve."},
	{"cluster.env", "ISTIO_SVC_IP", "`mode = \"manual\"` without `internal_ip`/`external_ip`",
		"Ours only: the manual entry's `address`, so the agent announces the address the entry was created with even where the VM's first interface has another. istioctl writes it only for `--internalIP`/`--externalIP`."},
	{"cluster.env", "CA_ADDR", "`istiod_address` set, or a gateway with only a hostname",
		"Ours only: without it `istio-start.sh` exports `CA_ADDR=istiod.<istio namespace>.svc:15012`, a name such a VM cannot resolve. istioctl writes none (for a revision, `istiod-<revision>.<istio namespace>.svc:15012`, which such a VM cannot resolve either)."},
	{"cluster.env", "ISTIO_SYSTEM_NAMESPACE", "provider `istio_namespace` other than istio-system",
		"Ours only: `istio-start.sh` defaults it to `istio-system` and derives `CA_ADDR=istiod.<it>.svc:15012` from it, while the hosts file names istiod in the Istio namespace; so a VM started from istioctl's bundle (which writes none) asks for its certificate at a name it cannot resolve."},
	{"hosts", "", "`istiod_address` set",
		"Ours is empty: the VM resolves `istiod_address` through DNS. istioctl has no such flag; its user sets `discoveryAddress` in the group's `proxy.istio.io/config` annotation, and istioctl still writes the gateway's IP for istiod's Service name."},
}

// istioctlBinary is istioctl of the pinned Istio ($TFPI_ISTIOCTL or tools.env).
func istioctlBinary(t *testing.T) string {
	t.Helper()
	p := controlplane.Tool("TFPI_ISTIOCTL")
	if p == "" {
		t.Fatalf("istioctl not found: TFPI_ISTIOCTL is not set and not in %s; run `make setup` (acceptance-tests/tools/build.sh istio)", controlplane.ToolsEnvFile())
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("istioctl: %v; run `make setup`", err)
	}
	return p
}

// checkSameAsIstioctl is a Check comparing the bundle of a registration in the state with
// istioctl's bundle for the same group and flags. extraArgs are istioctl flags for what the
// registration's attributes do not show: `--clusterID` when the configuration sets cluster_id
// (the attribute is also computed), `--istioNamespace` for the provider's istio_namespace.
func checkSameAsIstioctl(t *testing.T, address string, extraArgs ...string) resource.TestCheckFunc {
	return func(s *terraform.State) error {
		rs := s.RootModule().Resources[address]
		if rs == nil {
			return fmt.Errorf("%s not in state", address)
		}
		return compareWithIstioctl(t, rs.Primary.Attributes, extraArgs...)
	}
}

// compareWithIstioctl runs istioctl for the registration whose state attributes are given and
// returns every difference that istioctlDifferences does not explain.
func compareWithIstioctl(t *testing.T, attrs map[string]string, extraArgs ...string) error {
	t.Helper()
	theirs, args, err := runIstioctl(t, attrs, extraArgs)
	if err != nil {
		return err
	}
	ours := map[string]string{
		"cluster.env": attrs["cluster_env"], "mesh.yaml": attrs["mesh_config"], "hosts": attrs["hosts"],
		"root-cert.pem": attrs["root_cert"], "istio-token": attrs["istio_token"],
	}
	gateway, err := hostnameOnlyGateway(attrs)
	if err != nil {
		return err
	}
	problems := bundleDifferences(attrs, gateway, ours, theirs)
	if len(problems) > 0 {
		return fmt.Errorf("bundle of %s differs from `istioctl %s`:\n  %s", attrs["id"], strings.Join(args, " "), strings.Join(problems, "\n  "))
	}
	t.Logf("bundle of %s matches `istioctl %s` (deliberate differences aside)", attrs["id"], strings.Join(args, " "))
	return nil
}

// istioctlArgs maps a registration's attributes to the flags a user gives istioctl for the same
// VM, writing the group file (-f) when the registration overrides part of the group.
func istioctlArgs(t *testing.T, attrs map[string]string, outDir string, extraArgs []string) ([]string, error) {
	ns, group, ok := strings.Cut(attrs["workload_group"], "/")
	if !ok {
		return nil, fmt.Errorf("workload_group %q is not <namespace>/<name>", attrs["workload_group"])
	}
	args := []string{"x", "workload", "entry", "configure", "--kubeconfig", cp.Kubeconfig, "-o", outDir}
	groupFile, err := istioctlGroupFile(t, ns, group, attrs, filepath.Dir(outDir))
	if err != nil {
		return nil, err
	}
	if groupFile != "" {
		args = append(args, "-f", groupFile)
	} else {
		args = append(args, "--name", group, "--namespace", ns)
	}
	flag := func(name, attribute string) {
		if v := attrs[attribute]; v != "" {
			args = append(args, "--"+name, v)
		}
	}
	flag("revision", "revision")
	flag("ingressIP", "ingress_ip")
	flag("ingressService", "ingress_service")
	flag("internalIP", "internal_ip")
	flag("externalIP", "external_ip")
	if attrs["capture_dns"] == "false" {
		args = append(args, "--capture-dns=false")
	}
	if attrs["mode"] != "manual" {
		args = append(args, "--autoregister")
	}
	if ns := istioNamespace(); ns != "istio-system" {
		// What the provider's istio_namespace says (providerBlockWith).
		args = append(args, "--istioNamespace", ns)
	}
	if d := attrs["token_duration"]; d != "" {
		duration, err := time.ParseDuration(d)
		if err != nil {
			return nil, fmt.Errorf("token_duration %q: %w", d, err)
		}
		args = append(args, "--tokenDuration", strconv.Itoa(int(duration.Seconds())))
	}
	return append(args, extraArgs...), nil
}

// istioctlGroupFile writes the live group with what the registration overrides, as an istioctl
// user would edit the group file: network into template.network, labels and locality (label
// istio-locality) into metadata.labels, istiod_address as discoveryAddress into the
// proxy.istio.io/config annotation.
// It returns "" when the live group can be used as it is.
func istioctlGroupFile(t *testing.T, ns, name string, attrs map[string]string, dir string) (string, error) {
	labels := map[string]string{}
	for k, v := range attrs {
		if key, ok := strings.CutPrefix(k, "labels."); ok && key != "%" {
			labels[key] = v
		}
	}
	if attrs["network"] == "" && attrs["locality"] == "" && attrs["istiod_address"] == "" && len(labels) == 0 {
		return "", nil
	}
	group, err := resourceClient(gvrWorkloadGroup, ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		return "", err
	}
	obj := group.Object
	spec, _ := obj["spec"].(map[string]any)
	template, _ := spec["template"].(map[string]any)
	if template == nil {
		template = map[string]any{}
		spec["template"] = template
	}
	if n := attrs["network"]; n != "" {
		template["network"] = n
	}
	if l := attrs["locality"]; l != "" {
		labels["istio-locality"] = l
	}
	if len(labels) > 0 {
		meta, _ := spec["metadata"].(map[string]any)
		if meta == nil {
			meta = map[string]any{}
			spec["metadata"] = meta
		}
		merged, _ := meta["labels"].(map[string]any)
		if merged == nil {
			merged = map[string]any{}
		}
		for k, v := range labels {
			merged[k] = v
		}
		meta["labels"] = merged
	}
	if addr := attrs["istiod_address"]; addr != "" {
		addr = withDefaultPort(addr)
		annotations, _ := obj["metadata"].(map[string]any)["annotations"].(map[string]any)
		if annotations == nil {
			annotations = map[string]any{}
		}
		annotations["proxy.istio.io/config"] = "discoveryAddress: " + addr + "\n"
		obj["metadata"].(map[string]any)["annotations"] = annotations
	}
	out, err := yaml.Marshal(obj)
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, "workloadgroup.yaml")
	return path, os.WriteFile(path, out, 0o644)
}

// runIstioctl runs istioctl for the registration and returns its five files.
func runIstioctl(t *testing.T, attrs map[string]string, extraArgs []string) (map[string]string, []string, error) {
	work, err := os.MkdirTemp(t.TempDir(), "istioctl-")
	if err != nil {
		return nil, nil, err
	}
	outDir := filepath.Join(work, "bundle")
	args, err := istioctlArgs(t, attrs, outDir, extraArgs)
	if err != nil {
		return nil, nil, err
	}
	cmd := exec.Command(istioctlBinary(t), args...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+cp.Kubeconfig)
	var output bytes.Buffer
	cmd.Stdout, cmd.Stderr = &output, &output
	shown := strings.Join(args, " ")
	if err := cmd.Run(); err != nil {
		return nil, args, fmt.Errorf("istioctl %s: %v\n%s", shown, err, output.String())
	}
	files := map[string]string{}
	for _, name := range []string{"cluster.env", "mesh.yaml", "hosts", "root-cert.pem", "istio-token"} {
		b, err := os.ReadFile(filepath.Join(outDir, name))
		if err != nil && !os.IsNotExist(err) {
			return nil, args, err
		}
		files[name] = string(b)
	}
	return files, args, nil
}

// hostnameOnlyGateway is the DNS name the registration's gateway Service reports when its load
// balancer reports no IP ("" otherwise, and when ingress_ip or istiod_address decide where the
// VM reaches istiod). istioctl finds no IP in such a Service and writes no hosts line, while the
// provider makes the name the VM's discovery and CA address.
func hostnameOnlyGateway(attrs map[string]string) (string, error) {
	if attrs["ingress_ip"] != "" || attrs["istiod_address"] != "" {
		return "", nil
	}
	name, ns := "istio-eastwestgateway", istioNamespace()
	if s := attrs["ingress_service"]; s != "" {
		name = s
		if n, namespace, ok := strings.Cut(s, "."); ok {
			name, ns = n, namespace
		}
	}
	svc, err := resourceClient(gvrService, ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		return "", fmt.Errorf("the registration's gateway Service %s/%s: %w", ns, name, err)
	}
	ingress, _, _ := unstructured.NestedSlice(svc.Object, "status", "loadBalancer", "ingress")
	if len(ingress) == 0 {
		return "", nil
	}
	first, _ := ingress[0].(map[string]any)
	if ip, _ := first["ip"].(string); ip != "" {
		return "", nil
	}
	hostname, _ := first["hostname"].(string)
	return hostname, nil
}

// bundleDifferences compares the five files, allowing only istioctlDifferences. gatewayHostname
// is the name a gateway with only a hostname reports (hostnameOnlyGateway), else "".
func bundleDifferences(attrs map[string]string, gatewayHostname string, ours, theirs map[string]string) []string {
	var problems []string
	manual := attrs["mode"] == "manual"
	// Where the VM dials istiod instead of through a hosts line, if anywhere.
	discovery := ""
	if address := attrs["istiod_address"]; address != "" {
		discovery = withDefaultPort(address)
	} else if gatewayHostname != "" {
		discovery = gatewayHostname + ":15012"
	}
	report := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }

	// cluster.env and mesh.yaml's proxyMetadata share the same keys and exceptions.
	compareMetadata := func(file string, o, i map[string]string) {
		for _, key := range unionKeys(o, i) {
			ov, inOurs := o[key]
			iv, inTheirs := i[key]
			switch {
			case key == "ISTIO_META_WORKLOAD_ENTRY" && manual && !inTheirs:
				if ov != attrs["workload_entry_name"] {
					report("%s %s=%q, want the entry name %q", file, key, ov, attrs["workload_entry_name"])
				}
			case key == "ISTIO_SVC_IP" && manual && attrs["internal_ip"] == "" && attrs["external_ip"] == "" && !inTheirs:
				if ov != attrs["address"] {
					report("%s %s=%q, want the address %q", file, key, ov, attrs["address"])
				}
			case key == "CA_ADDR" && discovery != "":
				if ov != discovery {
					report("%s %s=%q, want %q", file, key, ov, discovery)
				}
			case key == "ISTIOD_SAN" && discovery != "" && !inTheirs:
				if !strings.HasPrefix(ov, "istiod") || !strings.HasSuffix(ov, ".svc") {
					report("%s %s=%q, want istiod's own Service name", file, key, ov)
				}
			case key == "ISTIO_SYSTEM_NAMESPACE" && istioNamespace() != "istio-system" && !inTheirs:
				if ov != istioNamespace() {
					report("%s %s=%q, want the Istio namespace %q", file, key, ov, istioNamespace())
				}
			case key == "ISTIO_METAJSON_LABELS":
				if !sameLabelsJSON(ov, iv) {
					report("%s %s: ours %s, istioctl %s", file, key, ov, iv)
				}
			case key == "ISTIO_INBOUND_PORTS":
				if !samePortSet(ov, iv) {
					report("%s %s: ours %q, istioctl %q", file, key, ov, iv)
				}
			case inOurs != inTheirs || ov != iv:
				report("%s %s: ours %s, istioctl %s", file, key, shown(ov, inOurs), shown(iv, inTheirs))
			}
		}
	}

	oursEnv, err1 := parseClusterEnv(ours["cluster.env"])
	theirsEnv, err2 := parseClusterEnv(theirs["cluster.env"])
	if err1 != nil || err2 != nil {
		report("cluster.env does not parse: ours %v, istioctl %v", err1, err2)
	} else {
		compareMetadata("cluster.env", oursEnv, theirsEnv)
	}

	oursMesh, err1 := parseMeshYAML(ours["mesh.yaml"])
	theirsMesh, err2 := parseMeshYAML(theirs["mesh.yaml"])
	if err1 != nil || err2 != nil {
		report("mesh.yaml does not parse: ours %v, istioctl %v", err1, err2)
	} else {
		compareMetadata("mesh.yaml proxyMetadata", stringMap(oursMesh["proxyMetadata"]), stringMap(theirsMesh["proxyMetadata"]))
		delete(oursMesh, "proxyMetadata")
		delete(theirsMesh, "proxyMetadata")
		if gatewayHostname != "" {
			if got := fmt.Sprint(oursMesh["discoveryAddress"]); got != discovery {
				report("mesh.yaml discoveryAddress %q, want the gateway's hostname %q", got, discovery)
			}
			delete(oursMesh, "discoveryAddress")
			delete(theirsMesh, "discoveryAddress")
		}
		if !reflect.DeepEqual(oursMesh, theirsMesh) {
			o, _ := json.Marshal(oursMesh)
			i, _ := json.Marshal(theirsMesh)
			report("mesh.yaml defaultConfig (proxyMetadata aside): ours %s, istioctl %s", o, i)
		}
	}

	if attrs["istiod_address"] != "" {
		if ours["hosts"] != "" {
			report("hosts: ours %q, want empty with istiod_address", ours["hosts"])
		}
	} else if ours["hosts"] != theirs["hosts"] {
		report("hosts: ours %q, istioctl %q", ours["hosts"], theirs["hosts"])
	}
	if ours["root-cert.pem"] != theirs["root-cert.pem"] {
		report("root-cert.pem differs byte for byte")
	}
	problems = append(problems, tokenDifferences(attrs, ours["istio-token"], theirs["istio-token"])...)
	return problems
}

func withDefaultPort(address string) string {
	if strings.Contains(address, ":") {
		return address
	}
	return address + ":15012"
}

func shown(v string, present bool) string {
	if !present {
		return "(absent)"
	}
	return strconv.Quote(v)
}

func unionKeys(a, b map[string]string) []string {
	seen := map[string]bool{}
	for k := range a {
		seen[k] = true
	}
	for k := range b {
		seen[k] = true
	}
	return sortedKeys(seen)
}

// sameLabelsJSON compares two ISTIO_METAJSON_LABELS values without our registration label.
func sameLabelsJSON(ours, theirs string) bool {
	var o, i map[string]string
	if json.Unmarshal([]byte(ours), &o) != nil || json.Unmarshal([]byte(theirs), &i) != nil {
		return false
	}
	if _, ok := o["terraform-provider-istio/registration"]; !ok {
		return false
	}
	delete(o, "terraform-provider-istio/registration")
	return reflect.DeepEqual(o, i)
}

func samePortSet(ours, theirs string) bool {
	split := func(s string) []string {
		parts := strings.Split(s, ",")
		sort.Strings(parts)
		return parts
	}
	return reflect.DeepEqual(split(ours), split(theirs))
}

// parseClusterEnv reads KEY=value lines with sh quoting (istioctl uses shellescape.Quote).
func parseClusterEnv(content string) (map[string]string, error) {
	out := map[string]string{}
	for _, line := range strings.Split(strings.TrimRight(content, "\n"), "\n") {
		if line == "" {
			continue
		}
		key, raw, ok := strings.Cut(line, "=")
		if !ok {
			return nil, fmt.Errorf("not KEY=value: %q", line)
		}
		value, err := shUnquote(raw)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", key, err)
		}
		out[key] = value
	}
	return out, nil
}

// shUnquote undoes sh quoting of one word: '…' literal, "…" with \-escapes, bare characters.
func shUnquote(s string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\'':
			end := strings.IndexByte(s[i+1:], '\'')
			if end < 0 {
				return "", fmt.Errorf("unterminated ' in %q", s)
			}
			b.WriteString(s[i+1 : i+1+end])
			i += end + 1
		case '"':
			j := i + 1
			for ; j < len(s) && s[j] != '"'; j++ {
				if s[j] == '\\' && j+1 < len(s) {
					j++
				}
				b.WriteByte(s[j])
			}
			if j >= len(s) {
				return "", fmt.Errorf("unterminated \" in %q", s)
			}
			i = j
		case '\\':
			if i+1 < len(s) {
				i++
				b.WriteByte(s[i])
			}
		default:
			b.WriteByte(s[i])
		}
	}
	return b.String(), nil
}

// parseMeshYAML returns defaultConfig of a mesh.yaml.
func parseMeshYAML(content string) (map[string]any, error) {
	var doc map[string]any
	if err := yaml.Unmarshal([]byte(content), &doc); err != nil {
		return nil, err
	}
	defaultConfig, ok := doc["defaultConfig"].(map[string]any)
	if !ok || len(doc) != 1 {
		return nil, fmt.Errorf("want exactly one key defaultConfig, got %v", sortedKeys(doc))
	}
	return defaultConfig, nil
}

func stringMap(v any) map[string]string {
	out := map[string]string{}
	m, _ := v.(map[string]any)
	for k, val := range m {
		out[k] = fmt.Sprint(val)
	}
	return out
}

// tokenDifferences compares the JWT payloads' audience, subject and lifetime (never the
// token itself, which is a credential and differs per issue).
func tokenDifferences(attrs map[string]string, ours, theirs string) []string {
	o, err1 := jwtClaims(ours)
	i, err2 := jwtClaims(theirs)
	if err1 != nil || err2 != nil {
		return []string{fmt.Sprintf("istio-token is not a JWT: ours %v, istioctl %v", err1, err2)}
	}
	var problems []string
	if !reflect.DeepEqual(o["aud"], i["aud"]) {
		problems = append(problems, fmt.Sprintf("istio-token audience: ours %v, istioctl %v", o["aud"], i["aud"]))
	}
	if o["sub"] != i["sub"] {
		problems = append(problems, fmt.Sprintf("istio-token subject: ours %v, istioctl %v", o["sub"], i["sub"]))
	}
	lifetime := func(c map[string]any) float64 { e, _ := c["exp"].(float64); a, _ := c["iat"].(float64); return e - a }
	if d := lifetime(o) - lifetime(i); d < -5 || d > 5 {
		problems = append(problems, fmt.Sprintf("istio-token lifetime: ours %.0fs, istioctl %.0fs", lifetime(o), lifetime(i)))
	}
	return problems
}

func jwtClaims(token string) (map[string]any, error) {
	parts := strings.Split(strings.TrimSpace(token), ".")
	if len(parts) != 3 {
		return nil, fmt.Errorf("%d parts", len(parts))
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return nil, err
	}
	var claims map[string]any
	return claims, json.Unmarshal(payload, &claims)
}

// TestOracle_istioctlDifferencesDocumented keeps the one table of deliberate differences and
// its docs page in step: every row's reason is on the page.
func TestOracle_istioctlDifferencesDocumented(t *testing.T) {
	page, err := os.ReadFile(filepath.Join("..", "docs", "guides", "istioctl-differences.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range istioctlDifferences {
		row := strings.ReplaceAll(fmt.Sprintf("| %s | %s | %s | %s |", d.File, backquoted(d.Key), d.When, d.Reason), "|  |", "| |")
		if !strings.Contains(string(page), row) {
			t.Errorf("docs/guides/istioctl-differences.md lacks the row:\n%s", row)
		}
	}
}

func backquoted(s string) string {
	if s == "" {
		return ""
	}
	return "`" + s + "`"
}

// TestOracle_bundleDifferencesFindChanges shows the comparison can fail: one change to
// istioctl's bundle at a time, outside the deliberate differences, must be reported.
func TestOracle_bundleDifferencesFindChanges(t *testing.T) {
	jwt := func(sub string, lifetime int) string {
		payload, _ := json.Marshal(map[string]any{"aud": []string{"istio-ca"}, "sub": sub, "iat": 1000, "exp": 1000 + lifetime})
		return "e30." + base64.RawURLEncoding.EncodeToString(payload) + ".c2ln"
	}
	base := map[string]string{
		"cluster.env":   "CANONICAL_SERVICE=product\nISTIO_INBOUND_PORTS=8080,9090\nISTIO_METAJSON_LABELS='{\"app\":\"product\"}'\nSERVICE_ACCOUNT=default\n",
		"mesh.yaml":     "defaultConfig:\n  discoveryAddress: istiod.istio-system.svc:15012\n  proxyMetadata:\n    CANONICAL_SERVICE: product\n    ISTIO_METAJSON_LABELS: '{\"app\":\"product\"}'\n",
		"hosts":         "192.0.2.1 istiod.istio-system.svc\n",
		"root-cert.pem": "-----BEGIN CERTIFICATE-----\nROOT\n-----END CERTIFICATE-----\n",
		"istio-token":   jwt("system:serviceaccount:ns:default", 3600),
	}
	ours := map[string]string{}
	for k, v := range base {
		ours[k] = strings.ReplaceAll(v, `{\"app\":\"product\"}`, `{\"app\":\"product\",\"terraform-provider-istio/registration\":\"r1\"}`)
		ours[k] = strings.ReplaceAll(ours[k], `{"app":"product"}`, `{"app":"product","terraform-provider-istio/registration":"r1"}`)
	}
	ours["cluster.env"] = strings.Replace(ours["cluster.env"], "8080,9090", "9090,8080", 1)
	attrs := map[string]string{"mode": "auto"}
	if problems := bundleDifferences(attrs, "", ours, base); len(problems) != 0 {
		t.Fatalf("deliberate differences only, yet reported: %v", problems)
	}
	changes := map[string]func(map[string]string){
		"cluster.env value": func(b map[string]string) {
			b["cluster.env"] = strings.Replace(b["cluster.env"], "SERVICE_ACCOUNT=default", "SERVICE_ACCOUNT=other", 1)
		},
		"cluster.env extra key": func(b map[string]string) { b["cluster.env"] += "CA_ADDR=istiod.istio-system.svc:15012\n" },
		"port set": func(b map[string]string) {
			b["cluster.env"] = strings.Replace(b["cluster.env"], "8080,9090", "8080", 1)
		},
		"labels": func(b map[string]string) {
			b["mesh.yaml"] = strings.Replace(b["mesh.yaml"], `"app":"product"`, `"app":"other"`, 1)
		},
		"mesh.yaml field":        func(b map[string]string) { b["mesh.yaml"] = strings.Replace(b["mesh.yaml"], "15012", "15010", 1) },
		"hosts":                  func(b map[string]string) { b["hosts"] = "" },
		"root-cert.pem":          func(b map[string]string) { b["root-cert.pem"] += "\n" },
		"token subject":          func(b map[string]string) { b["istio-token"] = jwt("system:serviceaccount:ns:other", 3600) },
		"token lifetime":         func(b map[string]string) { b["istio-token"] = jwt("system:serviceaccount:ns:default", 600) },
		"manual entry elsewhere": func(b map[string]string) { b["mesh.yaml"] += "    ISTIO_META_WORKLOAD_ENTRY: x\n" },
	}
	for name, change := range changes {
		theirs := map[string]string{}
		for k, v := range base {
			theirs[k] = v
		}
		change(theirs)
		if problems := bundleDifferences(attrs, "", ours, theirs); len(problems) == 0 {
			t.Errorf("%s: a change to istioctl's bundle was not reported", name)
		}
	}
}

// TestOracle_hostnameGatewayDifferences: the differences of a gateway that reports only a
// hostname (discoveryAddress, CA_ADDR, ISTIOD_SAN) are excused only for that gateway, and only
// when they carry the gateway's name and istiod's.
func TestOracle_hostnameGatewayDifferences(t *testing.T) {
	theirs := map[string]string{
		"cluster.env": "SERVICE_ACCOUNT=default\n",
		"mesh.yaml":   "defaultConfig:\n  discoveryAddress: istiod.istio-system.svc:15012\n  proxyMetadata:\n    SERVICE_ACCOUNT: default\n",
	}
	oursWith := func(gateway, san string) map[string]string {
		return map[string]string{
			"cluster.env": "CA_ADDR=" + gateway + ":15012\nISTIOD_SAN=" + san + "\nSERVICE_ACCOUNT=default\n",
			"mesh.yaml": "defaultConfig:\n  discoveryAddress: " + gateway + ":15012\n  proxyMetadata:\n    ISTIOD_SAN: " + san +
				"\n    SERVICE_ACCOUNT: default\n",
		}
	}
	// Only the files under test: hosts, root-cert.pem and the token are compared elsewhere.
	fileProblems := func(gateway string, ours map[string]string) []string {
		var out []string
		for _, p := range bundleDifferences(map[string]string{"mode": "auto"}, gateway, ours, theirs) {
			if strings.HasPrefix(p, "cluster.env") || strings.HasPrefix(p, "mesh.yaml") {
				out = append(out, p)
			}
		}
		return out
	}
	if problems := fileProblems("gw.example", oursWith("gw.example", "istiod.istio-system.svc")); len(problems) != 0 {
		t.Errorf("a hostname gateway's deliberate differences reported: %v", problems)
	}
	for name, c := range map[string]struct {
		gateway string
		ours    map[string]string
		want    int
	}{
		"no hostname gateway":    {"", oursWith("gw.example", "istiod.istio-system.svc"), 4},
		"another gateway's name": {"gw.example", oursWith("other.example", "istiod.istio-system.svc"), 2},
		"SAN not istiod's":       {"gw.example", oursWith("gw.example", "gw.example"), 2},
	} {
		if problems := fileProblems(c.gateway, c.ours); len(problems) != c.want {
			t.Errorf("%s: %d differences reported, want %d: %v", name, len(problems), c.want, problems)
		}
	}
}
