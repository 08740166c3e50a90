package acceptance

// The API server's audit log (controlplane/audit.go): the benchmark counts a
// client's requests from it, so it must hold every request of that client
// with verb, resource, user agent and field manager.

import (
	"context"
	"fmt"
	"testing"
	"time"

	"terraform-provider-istio/acceptance-tests/controlplane"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

func TestControlPlaneAuditLogRecordsEveryRequestOfAClient(t *testing.T) {
	ctx := context.Background()
	logPath := cp.Get("AUDIT_LOG")
	if logPath == "" {
		t.Fatal("the env file has no AUDIT_LOG")
	}
	agent := randomName("audit-probe")
	config := cp.RestConfig()
	config.UserAgent = agent
	c := kubernetes.NewForConfigOrDie(config)
	ns := testNamespace(t, "audit")
	name := randomName("cm")
	if _, err := c.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name}},
		metav1.CreateOptions{FieldManager: "audit-test"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CoreV1().ConfigMaps(ns).Get(ctx, name, metav1.GetOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CoreV1().ConfigMaps(ns).Get(ctx, "does-not-exist", metav1.GetOptions{}); err == nil {
		t.Fatal("GET of a missing ConfigMap succeeded")
	}

	var entries []controlplane.AuditEntry
	eventually(t, 10*time.Second, "three requests of "+agent+" in "+logPath, func() error {
		var err error
		entries, err = controlplane.ReadAuditLog(logPath, controlplane.UserAgentPrefix(agent))
		if err == nil && len(entries) < 3 {
			return fmt.Errorf("found %d", len(entries))
		}
		return err
	})
	if len(entries) != 3 {
		t.Fatalf("want exactly the 3 requests made, got %d: %+v", len(entries), entries)
	}
	want := []struct {
		verb, name, fieldManager string
		code                     int
	}{
		{"create", "", "audit-test", 201}, // a create's URI has no name
		{"get", name, "", 200},
		{"get", "does-not-exist", "", 404},
	}
	for i, w := range want {
		e := entries[i]
		if e.Verb != w.verb || e.Resource() != "configmaps" || e.ObjectRef.Namespace != ns ||
			(w.name != "" && e.ObjectRef.Name != w.name) || e.FieldManager() != w.fieldManager || e.Code() != w.code {
			t.Errorf("request %d: got verb %q resource %q namespace %q name %q fieldManager %q code %d (URI %s); want %+v",
				i, e.Verb, e.Resource(), e.ObjectRef.Namespace, e.ObjectRef.Name, e.FieldManager(), e.Code(), e.RequestURI, w)
		}
	}
}
