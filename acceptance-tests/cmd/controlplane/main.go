// Command controlplane starts, stops and inspects the local control plane
// (etcd, kube-apiserver, kube-controller-manager, istiod) used by the
// acceptance tests and `make demo`.
//
//	controlplane start [--run-dir DIR] [--profile default] [--timeout 3m]
//	controlplane stop  [--run-dir DIR]
//	controlplane env   [--run-dir DIR] [--export]
//	controlplane status [--run-dir DIR]
//	controlplane get   [--run-dir DIR] [-n NAMESPACE | -A] [-o yaml] RESOURCE [NAME]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"terraform-provider-istio/acceptance-tests/controlplane"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/yaml"
)

const usage = `usage: controlplane COMMAND [flags]

commands:
  start    start etcd, kube-apiserver, kube-controller-manager, install Istio with istioctl
           (--profile: %s) and run istiod; print the env file
  stop     stop every process recorded in the run directory
  env      print the env file of a started control plane (KUBECONFIG, ISTIOD_XDS_ADDR, ...)
  status   say whether the control plane of a run directory is running
  get      list objects, like kubectl get: get [-n NS | -A] [-o yaml] RESOURCE [NAME]

Every command takes --run-dir (default %s).
Tools come from $TFPI_KUBE_TESTENV, $TFPI_PILOT_DISCOVERY, $TFPI_ISTIOCTL, $TFPI_ISTIO_SAMPLES
or %s (make setup).
`

func main() {
	// Start re-executes this binary as the east-west gateway process.
	controlplane.RunGatewayIfRequested()
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usageText())
		os.Exit(2)
	}
	cmd, args := os.Args[1], os.Args[2:]
	fs := flag.NewFlagSet(cmd, flag.ExitOnError)
	runDir := fs.String("run-dir", envOr("TFPI_RUN_DIR", controlplane.DefaultRunDir()), "run directory")
	var err error
	switch cmd {
	case "start":
		profile := fs.String("profile", envOr("TFPI_PROFILE", controlplane.DefaultProfile), "install profile: "+strings.Join(controlplane.ProfileNames(), ", "))
		timeout := fs.Duration("timeout", 3*time.Minute, "readiness timeout per component")
		_ = fs.Parse(args)
		err = start(*runDir, *profile, *timeout)
	case "stop":
		_ = fs.Parse(args)
		err = controlplane.StopRunDir(*runDir)
		if err == nil {
			fmt.Fprintf(os.Stderr, "controlplane: stopped (logs stay in %s)\n", *runDir)
		}
	case "env":
		export := fs.Bool("export", false, "prefix lines with export")
		_ = fs.Parse(args)
		err = printEnv(*runDir, *export)
	case "status":
		_ = fs.Parse(args)
		if running := controlplane.Running(*runDir); len(running) > 0 {
			fmt.Printf("running in %s: %s\n", *runDir, strings.Join(running, ", "))
		} else {
			fmt.Printf("not running (%s)\n", *runDir)
			os.Exit(1)
		}
	case "get":
		ns := fs.String("n", "", "namespace (default: all namespaces)")
		all := fs.Bool("A", false, "all namespaces")
		output := fs.String("o", "", "output format: yaml")
		_ = fs.Parse(args)
		if *all {
			*ns = ""
		}
		err = get(*runDir, *ns, *output, fs.Args())
	case "-h", "--help", "help":
		fmt.Print(usageText())
		return
	default:
		fmt.Fprintf(os.Stderr, "unknown command %q\n%s", cmd, usageText())
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "controlplane %s: %v\n", cmd, err)
		os.Exit(1)
	}
}

func usageText() string {
	return fmt.Sprintf(usage, strings.Join(controlplane.ProfileNames(), ", "), controlplane.DefaultRunDir(), controlplane.ToolsEnvFile())
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

func start(runDir, profile string, timeout time.Duration) error {
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	cp, err := controlplane.Start(ctx, controlplane.Options{
		RunDir:       runDir,
		Profile:      profile,
		ReadyTimeout: timeout,
		Progress:     os.Stderr,
	})
	if err != nil {
		return err
	}
	for _, e := range cp.Env {
		fmt.Printf("%s=%s\n", e.Key, e.Value)
	}
	fmt.Fprintf(os.Stderr, "controlplane: env file %s; stop with: go run ./cmd/controlplane stop --run-dir %s\n",
		controlplane.EnvFile(cp.RunDir), cp.RunDir)
	return nil
}

func printEnv(runDir string, export bool) error {
	env, err := controlplane.ReadEnvFile(runDir)
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("no control plane started in %s (no env file)", runDir)
	}
	if err != nil {
		return err
	}
	if len(controlplane.Running(runDir)) == 0 {
		fmt.Fprintf(os.Stderr, "controlplane: warning: no process of %s is running\n", runDir)
	}
	for _, e := range env {
		if export {
			fmt.Print("export ")
		}
		fmt.Printf("%s=%s\n", e.Key, e.Value)
	}
	return nil
}

// get lists objects of one resource type, resolved through discovery by
// plural, singular, kind or short name (like kubectl get).
func get(runDir, namespace, output string, args []string) error {
	if len(args) == 0 || len(args) > 2 {
		return errors.New("usage: get [-n NAMESPACE | -A] [-o yaml] RESOURCE [NAME]")
	}
	kubeconfig := os.Getenv("KUBECONFIG")
	if env, err := controlplane.ReadEnvFile(runDir); err == nil {
		for _, e := range env {
			if e.Key == "KUBECONFIG" {
				kubeconfig = e.Value
			}
		}
	}
	if kubeconfig == "" {
		return fmt.Errorf("no control plane started in %s and KUBECONFIG is not set", runDir)
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return err
	}
	disc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return err
	}
	gvr, namespaced, err := resolve(disc, args[0])
	if err != nil {
		return err
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return err
	}
	var ri dynamic.ResourceInterface = dyn.Resource(gvr)
	if namespaced && namespace != "" {
		ri = dyn.Resource(gvr).Namespace(namespace)
	}
	var items []unstructured.Unstructured
	if len(args) == 2 {
		if namespaced && namespace == "" {
			ri = dyn.Resource(gvr).Namespace("default")
		}
		obj, err := ri.Get(context.Background(), args[1], metav1.GetOptions{})
		if err != nil {
			return err
		}
		items = append(items, *obj)
	} else {
		list, err := ri.List(context.Background(), metav1.ListOptions{})
		if err != nil {
			return err
		}
		items = list.Items
	}
	if output == "yaml" {
		for i, it := range items {
			unstructured.RemoveNestedField(it.Object, "metadata", "managedFields")
			b, err := yaml.Marshal(it.Object)
			if err != nil {
				return err
			}
			if i > 0 {
				fmt.Println("---")
			}
			fmt.Print(string(b))
		}
		return nil
	}
	if len(items) == 0 {
		fmt.Printf("No %s found.\n", gvr.Resource)
		return nil
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 4, 3, ' ', 0)
	if namespaced {
		fmt.Fprint(w, "NAMESPACE\t")
	}
	fmt.Fprintln(w, "NAME\tSTATUS\tAGE")
	for _, it := range items {
		if namespaced {
			fmt.Fprintf(w, "%s\t", it.GetNamespace())
		}
		age := time.Since(it.GetCreationTimestamp().Time).Round(time.Second)
		fmt.Fprintf(w, "%s\t%s\t%s\n", it.GetName(), summary(it), age)
	}
	return w.Flush()
}

// summary is a one-word health: the phase, or the condition types that are True.
func summary(u unstructured.Unstructured) string {
	if phase, ok, _ := unstructured.NestedString(u.Object, "status", "phase"); ok {
		return phase
	}
	conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	var out []string
	for _, c := range conds {
		m, _ := c.(map[string]any)
		if m["status"] == "True" {
			out = append(out, fmt.Sprint(m["type"]))
		} else if m["status"] == "False" {
			out = append(out, fmt.Sprint("!", m["type"]))
		}
	}
	if len(out) == 0 {
		return "-"
	}
	return strings.Join(out, ",")
}

func resolve(disc discovery.DiscoveryInterface, name string) (schema.GroupVersionResource, bool, error) {
	name = strings.ToLower(name)
	group := ""
	if i := strings.IndexByte(name, '.'); i > 0 {
		name, group = name[:i], name[i+1:]
	}
	lists, err := disc.ServerPreferredResources()
	if err != nil && len(lists) == 0 {
		return schema.GroupVersionResource{}, false, err
	}
	for _, l := range lists {
		gv, err := schema.ParseGroupVersion(l.GroupVersion)
		if err != nil || (group != "" && gv.Group != group) {
			continue
		}
		for _, r := range l.APIResources {
			if strings.Contains(r.Name, "/") {
				continue
			}
			if r.Name == name || r.SingularName == name || strings.ToLower(r.Kind) == name || slices.Contains(r.ShortNames, name) {
				return gv.WithResource(r.Name), r.Namespaced, nil
			}
		}
	}
	return schema.GroupVersionResource{}, false, fmt.Errorf("the server doesn't have a resource type %q", name)
}
