package controlplane

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A watch is logged twice (ResponseStarted, ResponseComplete) with one
// auditID; a line the API server is still writing ends the log.
func TestReadAuditLogCountsEachRequestOnceAndToleratesAPartialLastLine(t *testing.T) {
	lines := []string{
		`{"auditID":"w1","stage":"ResponseStarted","verb":"watch","userAgent":"probe/1","requestURI":"/api/v1/namespaces/a/secrets?watch=true","objectRef":{"resource":"secrets","namespace":"a"},"responseStatus":{"code":200}}`,
		`{"auditID":"p1","stage":"ResponseComplete","verb":"patch","userAgent":"probe/1","requestURI":"/apis/networking.istio.io/v1/namespaces/a/workloadentries/e?fieldManager=tf&force=true","objectRef":{"resource":"workloadentries","namespace":"a","name":"e","apiGroup":"networking.istio.io"},"responseStatus":{"code":201}}`,
		`{"auditID":"o1","stage":"ResponseComplete","verb":"get","userAgent":"other/2","requestURI":"/api/v1/namespaces/a/serviceaccounts/x/token","objectRef":{"resource":"serviceaccounts","subresource":"token"},"responseStatus":{"code":201}}`,
		`{"auditID":"w1","stage":"ResponseComplete","verb":"watch","userAgent":"probe/1","requestURI":"/api/v1/namespaces/a/secrets?watch=true","objectRef":{"resource":"secrets","namespace":"a"},"responseStatus":{"code":200}}`,
		`{"auditID":"x9","stage":"Respon`,
	}
	path := filepath.Join(t.TempDir(), "audit.log")
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := ReadAuditLog(path, UserAgentPrefix("probe/"))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("want 2 requests of probe/ (watch once, patch), got %d: %+v", len(got), got)
	}
	if got[0].Verb != "watch" || got[0].Stage != "ResponseComplete" || got[0].Resource() != "secrets" {
		t.Errorf("first request: %+v", got[0])
	}
	if got[1].Verb != "patch" || got[1].FieldManager() != "tf" || got[1].Code() != 201 {
		t.Errorf("second request: verb %q fieldManager %q code %d", got[1].Verb, got[1].FieldManager(), got[1].Code())
	}
	all, err := ReadAuditLog(path, func(AuditEntry) bool { return true })
	if err != nil || len(all) != 3 || all[2].Resource() != "serviceaccounts/token" {
		t.Fatalf("all requests: %v %+v", err, all)
	}

	// A broken line in the middle is an error, not silently skipped.
	middle := append(append([]string{}, lines[:2]...), `{"broken`, lines[2])
	if err := os.WriteFile(path, []byte(strings.Join(middle, "\n")), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadAuditLog(path, UserAgentPrefix("probe/")); err == nil || !strings.Contains(err.Error(), ":3:") {
		t.Fatalf("want an error naming line 3, got %v", err)
	}
}
