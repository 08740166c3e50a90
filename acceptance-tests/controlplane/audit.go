package controlplane

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// The API server's audit log: one JSON event per line at Metadata level (who,
// verb, resource, URI with its query, response code; never a body). The
// benchmark counts a client's requests per verb from it; tests may use it to
// see which calls a provider made.
const (
	auditPolicyFileName = "audit-policy.yaml"
	auditLogFileName    = "audit.log"
)

// auditPolicy logs every request once it completes (a watch also when its
// response starts); RequestReceived is left out, so a finished request has one
// event and a watch two, with the same auditID.
const auditPolicy = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
- level: Metadata
`

// writeAuditPolicy writes the policy into the run directory and publishes the
// log's path as AUDIT_LOG. The log backend writes JSON lines in blocking mode
// (an event is on disk before its response is sent).
func (cp *ControlPlane) writeAuditPolicy() error {
	cp.setEnv("AUDIT_LOG", cp.auditLogPath())
	return os.WriteFile(cp.auditPolicyPath(), []byte(auditPolicy), 0o644)
}

func (cp *ControlPlane) auditPolicyPath() string {
	return filepath.Join(cp.RunDir, auditPolicyFileName)
}

func (cp *ControlPlane) auditLogPath() string { return filepath.Join(cp.RunDir, auditLogFileName) }

// AuditEntry is one API request as the audit log records it.
type AuditEntry struct {
	AuditID    string `json:"auditID"`
	Stage      string `json:"stage"`
	Verb       string `json:"verb"`
	RequestURI string `json:"requestURI"`
	UserAgent  string `json:"userAgent"`
	User       struct {
		Username string `json:"username"`
	} `json:"user"`
	ObjectRef *struct {
		Resource    string `json:"resource"`
		Subresource string `json:"subresource"`
		Namespace   string `json:"namespace"`
		Name        string `json:"name"`
		APIGroup    string `json:"apiGroup"`
		APIVersion  string `json:"apiVersion"`
	} `json:"objectRef"`
	ResponseStatus *struct {
		Code int `json:"code"`
	} `json:"responseStatus"`
	RequestReceived time.Time `json:"requestReceivedTimestamp"`
	StageTimestamp  time.Time `json:"stageTimestamp"`
}

// Resource is "resource[/subresource]" of the request ("" for non-resource
// URLs such as /apis or /openapi/v2).
func (e AuditEntry) Resource() string {
	if e.ObjectRef == nil {
		return ""
	}
	if e.ObjectRef.Subresource != "" {
		return e.ObjectRef.Resource + "/" + e.ObjectRef.Subresource
	}
	return e.ObjectRef.Resource
}

// FieldManager is the request's fieldManager query parameter (server-side
// apply and other writes that name one), or "".
func (e AuditEntry) FieldManager() string {
	u, err := url.Parse(e.RequestURI)
	if err != nil {
		return ""
	}
	return u.Query().Get("fieldManager")
}

// Code is the response's HTTP status code (0 while a watch is still open).
func (e AuditEntry) Code() int {
	if e.ResponseStatus == nil {
		return 0
	}
	return e.ResponseStatus.Code
}

// ReadAuditLog returns the requests of an audit log that keep accepts, one
// entry per request (the last stage seen of each auditID), in log order.
func ReadAuditLog(path string, keep func(AuditEntry) bool) ([]AuditEntry, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []AuditEntry
	index := map[string]int{}
	scanner := bufio.NewScanner(f)
	scanner.Buffer(make([]byte, 0, 64*1024), 16*1024*1024)
	var broken error // a line that did not parse; fine only as the last one (still being written)
	for line := 1; scanner.Scan(); line++ {
		if broken != nil {
			return nil, broken
		}
		var e AuditEntry
		if err := json.Unmarshal(scanner.Bytes(), &e); err != nil {
			broken = fmt.Errorf("%s:%d: %w", path, line, err)
			continue
		}
		if !keep(e) {
			continue
		}
		if i, seen := index[e.AuditID]; seen {
			out[i] = e
			continue
		}
		index[e.AuditID] = len(out)
		out = append(out, e)
	}
	return out, scanner.Err()
}

// UserAgentPrefix keeps the requests whose user agent starts with prefix.
func UserAgentPrefix(prefix string) func(AuditEntry) bool {
	return func(e AuditEntry) bool { return strings.HasPrefix(e.UserAgent, prefix) }
}
