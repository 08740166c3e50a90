package acceptance

// istiod's validation as the oracle of the provider's plan-time verdict (issue 9 item 6). Every case
// of oracle_cases_test.go is judged twice on the same cluster:
//   - ours: `terraform validate -json` over all cases at once, then `terraform plan -json` over
//     the cases validate accepted (each case is its own file, so every diagnostic names its case);
//   - Istio's: a server-side dry-run create of the object the provider sends for the case, which
//     runs the CRD schema (OpenAPI and CEL rules) and istiod's validating webhook.
// The verdicts must agree, except where oracleStricter gives the reason we reject what Istio
// accepts, or where oracleKnownDefects names the provider defect (issue 10) that still disagrees.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	tfjson "github.com/hashicorp/terraform-json"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// verdict is one side's judgement of a case.
type verdict struct {
	Rejected bool
	Reason   string
}

func (v verdict) String() string {
	if v.Rejected {
		return "reject (" + oneLine(v.Reason) + ")"
	}
	return "accept"
}

func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 220 {
		s = s[:220] + "…"
	}
	return s
}

func TestAccOracle_validation(t *testing.T) {
	testAccPreCheck(t)
	started := time.Now()
	ns := testNamespace(t, "oracle")
	waitForDefaultServiceAccount(t, ns)
	requireLiveWebhook(t, ns)
	groupUIDs := createOracleGroups(t, ns)

	cases := oracleValidationCases()
	if len(cases) < 300 {
		t.Fatalf("only %d cases: the oracle needs at least 300", len(cases))
	}
	ours := planVerdicts(t, ns, cases)
	istio := map[string]verdict{}
	for _, c := range cases {
		istio[c.ID] = dryRunVerdict(t, ns, c, groupUIDs)
	}

	const (
		agreed = iota
		stricter
		known
		disagreement
	)
	names := [...]string{"agreed", "stricter with reason", "known defects (issue 10)", "disagreements"}
	var total [4]int
	classes := map[string]*[4]int{}
	for _, c := range cases {
		o, i := ours[c.ID], istio[c.ID]
		line := fmt.Sprintf("%s: ours %s, istio %s", c.ID, o, i)
		outcome := disagreement
		switch {
		case o.Rejected == i.Rejected:
			outcome = agreed
			if defect := knownDefect(oracleKnownDefects, c.ID); defect != "" {
				t.Errorf("%s agrees now: known defect %q is fixed, delete it from oracleKnownDefects", c.ID, defect)
			}
		case o.Rejected && oracleStricterReason(c.ID) != "":
			outcome = stricter
			t.Logf("stricter: %s; reason: %s", line, oracleStricterReason(c.ID))
		case knownDefect(oracleKnownDefects, c.ID) != "":
			outcome = known
			t.Logf("KNOWN DEFECT (%s): %s", knownDefect(oracleKnownDefects, c.ID), line)
		default:
			t.Errorf("DISAGREEMENT %s", line)
		}
		total[outcome]++
		class := caseClass(c.ID)
		if classes[class] == nil {
			classes[class] = &[4]int{}
		}
		classes[class][outcome]++
	}
	for _, class := range sortedKeys(classes) {
		n := classes[class]
		t.Logf("class %-40s %3d cases: %d agreed, %d stricter, %d known defects, %d disagreements", class, n[0]+n[1]+n[2]+n[3], n[0], n[1], n[2], n[3])
	}
	t.Logf("validation oracle tally: %d cases, %d %s, %d %s, %d %s, %d %s (%s)", len(cases),
		total[agreed], names[agreed], total[stricter], names[stricter], total[known], names[known], total[disagreement], names[disagreement],
		time.Since(started).Round(time.Second))
	if strictKnownDefects() && total[known] > 0 {
		t.Errorf("%d known defects disagree with istiod (TFPI_ORACLE_STRICT=1)", total[known])
	}
}

// caseClass is a case ID without its last part: the attribute it varies.
func caseClass(id string) string {
	if i := strings.LastIndex(id, "/"); i > 0 {
		return id[:i]
	}
	return id
}

// strictKnownDefects makes known defects fail (the proof that a test fails before its fix).
func strictKnownDefects() bool { return os.Getenv("TFPI_ORACLE_STRICT") == "1" }

// requireLiveWebhook fails unless istiod's validating webhook answers dry-run creates: a group
// whose probe has no handler passes the CRD schema and only the webhook rejects it
// (pkg/config/validation: "unknown health check method").
func requireLiveWebhook(t *testing.T, ns string) {
	t.Helper()
	probe := groupSpec{Name: "webhook-check", Template: &templateSpec{}, Probe: &probeSpec{Period: num(5)}}
	v := dryRunObject(t, probe.object(ns), gvrWorkloadGroup, ns)
	if !v.Rejected || !strings.Contains(v.Reason, "validation.istio.io") {
		t.Fatalf("istiod's validating webhook is not live on this control plane: a WorkloadGroup without a probe handler was %s, want a denial by validation.istio.io", v)
	}
}

// createOracleGroups creates the groups the registration cases use and returns their UIDs.
func createOracleGroups(t *testing.T, ns string) map[string]string {
	t.Helper()
	uids := map[string]string{}
	for name, g := range oracleGroups {
		obj := &unstructured.Unstructured{Object: g.object(ns)}
		created, err := resourceClient(gvrWorkloadGroup, ns).Create(context.Background(), obj, metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("creating group %s: %v", name, err)
		}
		uids[name] = string(created.GetUID())
	}
	return uids
}

func dryRunVerdict(t *testing.T, ns string, c oracleCase, groupUIDs map[string]string) verdict {
	if c.Group != nil {
		return dryRunObject(t, c.Group.object(ns), gvrWorkloadGroup, ns)
	}
	r := c.Registration
	return dryRunObject(t, r.entryObject(ns, oracleGroups[r.Group], groupUIDs[r.Group]), gvrWorkloadEntry, ns)
}

// dryRunObject asks the API server (schema, CEL rules, admission webhooks) to create obj
// without persisting it.
func dryRunObject(t *testing.T, obj map[string]any, gvr schema.GroupVersionResource, ns string) verdict {
	t.Helper()
	_, err := resourceClient(gvr, ns).Create(context.Background(), &unstructured.Unstructured{Object: obj},
		metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}, FieldValidation: "Strict"})
	switch {
	case err == nil:
		return verdict{}
	case apierrors.IsInvalid(err) || apierrors.IsBadRequest(err) || apierrors.IsForbidden(err):
		return verdict{Rejected: true, Reason: err.Error()}
	default:
		t.Fatalf("dry-run create of %s %v: %v (not a validation verdict)", gvr.Resource, obj["metadata"].(map[string]any)["name"], err)
		return verdict{}
	}
}

// ---- our verdict: terraform validate + plan ------------------------------------------------

var caseFile = regexp.MustCompile(`^case_(\d+)\.tf$`)

// planVerdicts writes every case as its own file (case_<i>.tf, resource c<i>) in one
// configuration and returns the provider's plan-time verdict per case ID.
func planVerdicts(t *testing.T, ns string, cases []oracleCase) map[string]verdict {
	t.Helper()
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "provider.tf"), terraformHeader())
	for i, c := range cases {
		writeFile(t, filepath.Join(dir, fmt.Sprintf("case_%d.tf", i)), c.hcl(fmt.Sprintf("c%d", i), ns))
	}
	runTerraform(t, dir, "init", "-input=false", "-no-color")

	out := map[string]verdict{}
	byFile := func(diags []tfjson.Diagnostic, phase string) {
		for _, d := range diags {
			if d.Severity != tfjson.DiagnosticSeverityError {
				continue
			}
			if d.Range == nil || !caseFile.MatchString(d.Range.Filename) {
				t.Fatalf("terraform %s: an error names no case file, so it cannot be attributed: %s: %s", phase, d.Summary, d.Detail)
			}
			i := atoi(caseFile.FindStringSubmatch(d.Range.Filename)[1])
			id := cases[i].ID
			v := out[id]
			v.Rejected = true
			v.Reason = strings.TrimSpace(v.Reason + "; " + phase + ": " + d.Summary + ": " + d.Detail)
			out[id] = v
		}
	}
	// validate: every ValidateResourceConfig error, for all cases at once.
	validateJSON, _ := terraformOutput(t, dir, "validate", "-json", "-no-color")
	var validated tfjson.ValidateOutput
	if err := json.Unmarshal(validateJSON, &validated); err != nil {
		t.Fatalf("terraform validate -json: %v\n%s", err, validateJSON)
	}
	byFile(validated.Diagnostics, "validate")
	// plan: the cases validate accepted (plan stops at validation errors).
	for i, c := range cases {
		if out[c.ID].Rejected {
			if err := os.Remove(filepath.Join(dir, fmt.Sprintf("case_%d.tf", i))); err != nil {
				t.Fatal(err)
			}
		}
	}
	planJSON, _ := terraformOutput(t, dir, "plan", "-json", "-input=false", "-refresh=false", "-lock=false", "-no-color")
	byFile(planDiagnostics(t, planJSON), "plan")
	for _, c := range cases {
		if _, ok := out[c.ID]; !ok {
			out[c.ID] = verdict{}
		}
	}
	return out
}

// planDiagnostics reads the diagnostics of a `terraform plan -json` stream.
func planDiagnostics(t *testing.T, stream []byte) []tfjson.Diagnostic {
	var diags []tfjson.Diagnostic
	s := bufio.NewScanner(bytes.NewReader(stream))
	s.Buffer(make([]byte, 1<<20), 16<<20)
	for s.Scan() {
		var line struct {
			Type       string             `json:"type"`
			Diagnostic *tfjson.Diagnostic `json:"diagnostic"`
		}
		if err := json.Unmarshal(s.Bytes(), &line); err != nil {
			t.Fatalf("terraform plan -json: not a JSON line: %v: %s", err, s.Text())
		}
		if line.Type == "diagnostic" && line.Diagnostic != nil {
			diags = append(diags, *line.Diagnostic)
		}
	}
	return diags
}

func (c oracleCase) hcl(resource, ns string) string {
	if c.Group != nil {
		return c.Group.hcl(resource, ns)
	}
	return c.Registration.hcl(resource, ns)
}

// terraform runs the acceptance tests' Terraform CLI in dir and fails on error.
func runTerraform(t *testing.T, dir string, args ...string) []byte {
	t.Helper()
	out, err := terraformOutput(t, dir, args...)
	if err != nil {
		t.Fatalf("terraform %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// terraformOutput runs the CLI and returns its stdout; a non-zero exit (diagnostics) is returned
// as the error with stderr.
func terraformOutput(t *testing.T, dir string, args ...string) ([]byte, error) {
	t.Helper()
	cmd := exec.Command(os.Getenv("TF_ACC_TERRAFORM_PATH"), args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "TF_IN_AUTOMATION=1", "CHECKPOINT_DISABLE=1")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		err = fmt.Errorf("%w: %s", err, stderr.String())
	}
	return out, err
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func atoi(s string) int {
	n := 0
	fmt.Sscan(s, &n)
	return n
}

// oracleStricterReason is why we deliberately reject a case istiod accepts ("" if we do not).
func oracleStricterReason(id string) string {
	keys := sortedKeys(oracleStricter)
	sort.Slice(keys, func(i, j int) bool { return len(keys[i]) > len(keys[j]) })
	for _, prefix := range keys {
		if strings.HasPrefix(id, prefix) {
			return oracleStricter[prefix]
		}
	}
	return ""
}
