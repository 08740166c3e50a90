package controlplane

import (
	"fmt"
	"slices"
	"sort"
	"strings"
)

// Profile is one way users install Istio for VMs, as the tests select it
// (TFPI_PROFILE, Options.Profile). Every profile is Istio's own install
// (istioctl manifest generate) plus the steps of Istio's VM guide that make
// istiod reachable from VMs: the east-west gateway of
// samples/multicluster/gen-eastwest-gateway.sh and
// samples/multicluster/expose-istiod*.yaml.
type Profile struct {
	Name string
	// Revisions are the istiod control planes installed, in install order:
	// "default" is an install without --revision; others are
	// `--set revision=<rev>`. The first install is the mesh's first, so
	// istioctl points the `default` revision tag at it.
	Revisions []string
	// ClusterName, Network and MeshID are values.global.multiCluster.clusterName,
	// values.global.network and values.global.meshID of every install ("" =
	// the chart default, not set).
	ClusterName, Network, MeshID string
	// GatewayHostname, when set, is what the east-west gateway's load
	// balancer reports instead of an IP (as AWS ELBs do). The install then
	// sets istiod's ISTIOD_CUSTOM_HOST to it (values.pilot.env), as a user of
	// such a gateway must: VMs reach istiod's CA by that name, and the agent
	// checks istiod's serving certificate against it, which carries the name
	// only through ISTIOD_CUSTOM_HOST (pilot/pkg/bootstrap/server.go).
	GatewayHostname string
	// Namespace is values.global.istioNamespace, the namespace istioctl
	// installs into ("" = the chart default, istio-system; see
	// IstioNamespace).
	Namespace string
}

// defaultIstioNamespace is the charts' values.global.istioNamespace.
const defaultIstioNamespace = "istio-system"

// IstioNamespace is where istiod and its configuration live.
func (p Profile) IstioNamespace() string {
	if p.Namespace == "" {
		return defaultIstioNamespace
	}
	return p.Namespace
}

// profiles are the installs the tests run against. README.md "Local control
// plane" describes each.
var profiles = []Profile{
	// `istioctl install` with no options: clusterName "", so istiod runs as
	// CLUSTER_ID=Kubernetes (istio-discovery/templates/deployment.yaml).
	{Name: "default", Revisions: []string{"default"}},
	// A revision-only install (`istioctl install --set revision=canary` on
	// an empty cluster): istioctl points the `default` tag at canary.
	{Name: "revision", Revisions: []string{"canary"}},
	// Istio's multi-network VM install: network, mesh ID and cluster name
	// set, east-west gateway labelled with the network.
	{Name: "multi-network", Revisions: []string{"default"}, ClusterName: "cluster1", Network: "network1", MeshID: "mesh1"},
	// The same, with a gateway load balancer that reports a DNS name.
	{Name: "multi-network-hostname", Revisions: []string{"default"}, ClusterName: "cluster1", Network: "network1", MeshID: "mesh1",
		GatewayHostname: "eastwest-lb.tfpi.test"},
	// A named cluster with a canary control plane beside the default one.
	{Name: "named-cluster", Revisions: []string{"default", "canary"}, ClusterName: "cluster1", Network: "network1"},
	// The default install into another namespace (`istioctl install --set
	// values.global.istioNamespace=istio-vm`): istioctl takes the namespace
	// of every object from that value (operator/pkg/render/manifest.go).
	{Name: "custom-namespace", Revisions: []string{"default"}, Namespace: "istio-vm"},
}

// DefaultProfile is used when neither Options.Profile nor TFPI_PROFILE says.
const DefaultProfile = "default"

// ProfileNames lists every profile, in the order of the table above.
func ProfileNames() []string {
	var names []string
	for _, p := range profiles {
		names = append(names, p.Name)
	}
	return names
}

// LookupProfile returns the profile of that name.
func LookupProfile(name string) (Profile, error) {
	for _, p := range profiles {
		if p.Name == name {
			p.Revisions = slices.Clone(p.Revisions)
			return p, nil
		}
	}
	return Profile{}, fmt.Errorf("unknown install profile %q; use one of %s", name, strings.Join(ProfileNames(), ", "))
}

// DefaultRevision is the revision the `default` tag points at: the first
// install's (istioctl install creates the tag on an empty cluster,
// operator/pkg/webhook/webhook.go).
func (p Profile) DefaultRevision() string { return p.Revisions[0] }

// CanonicalRevision maps "" to "default".
func CanonicalRevision(rev string) string {
	if rev == "" {
		return "default"
	}
	return rev
}

// globalValues are the --set flags every install of the profile shares.
func (p Profile) globalValues() []string {
	var set []string
	for key, value := range map[string]string{
		"values.global.multiCluster.clusterName": p.ClusterName,
		"values.global.network":                  p.Network,
		"values.global.meshID":                   p.MeshID,
		"values.pilot.env.ISTIOD_CUSTOM_HOST":    p.GatewayHostname,
		"values.global.istioNamespace":           p.Namespace,
	} {
		if value != "" {
			set = append(set, key+"="+value)
		}
	}
	sort.Strings(set)
	return set
}

// installArgs are the `istioctl manifest generate` arguments of one
// revision's install. The first install uses the default profile (istiod,
// CRDs, ingress gateway); a later one is a canary control plane, rendered
// with the minimal profile so the gateways already installed stay as they
// are.
func (p Profile) installArgs(rev string) []string {
	profile := "default"
	if rev != p.Revisions[0] {
		profile = "minimal"
	}
	args := []string{"manifest", "generate", "--set", "profile=" + profile}
	if rev != "default" {
		args = append(args, "--set", "revision="+rev)
	}
	for _, set := range p.globalValues() {
		args = append(args, "--set", set)
	}
	return args
}

// eastWestGatewayArgs are the arguments of gen-eastwest-gateway.sh as the
// VM guide gives them: --network for a multi-network mesh, else
// --single-cluster; the gateway belongs to the first install's revision.
func (p Profile) eastWestGatewayArgs() []string {
	args := []string{"--single-cluster"}
	if p.Network != "" {
		args = []string{"--network", p.Network}
	}
	if rev := p.Revisions[0]; rev != "default" {
		args = append(args, "--revision", rev)
	}
	return args
}
