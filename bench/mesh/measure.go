package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"terraform-provider-istio/acceptance-tests/controlplane"
)

// audit reads a windows file, one "label<TAB>since_ns<TAB>until_ns<TAB>agent"
// line per measured command (agent: a regular expression for the client's user
// agent; ^$ is a client that sends none), and prints
// "label<TAB>verb<TAB>what<TAB>count" for the requests of that client received
// in that window, where what is resource[/subresource] or, for discovery and
// OpenAPI, the URL path. One pass over the log for all windows.
func audit(logPath, windowsPath string) error {
	windows, err := readWindows(windowsPath)
	if err != nil {
		return err
	}
	matching := func(e controlplane.AuditEntry) []string {
		var labels []string
		for _, w := range windows {
			if w.agent.MatchString(e.UserAgent) && !e.RequestReceived.Before(w.since) && !e.RequestReceived.After(w.until) {
				labels = append(labels, w.label)
			}
		}
		return labels
	}
	entries, err := controlplane.ReadAuditLog(logPath, func(e controlplane.AuditEntry) bool { return len(matching(e)) > 0 })
	if err != nil {
		return err
	}
	type key struct{ label, verb, what string }
	counts := map[key]int{}
	for _, e := range entries {
		what := e.Resource()
		if what == "" {
			u, _ := url.Parse(e.RequestURI)
			what = u.Path
		}
		for _, label := range matching(e) {
			counts[key{label, e.Verb, what}]++
		}
	}
	keys := make([]key, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		a, b := keys[i], keys[j]
		return a.label+"\x00"+a.verb+"\x00"+a.what < b.label+"\x00"+b.verb+"\x00"+b.what
	})
	for _, k := range keys {
		fmt.Printf("%s\t%s\t%s\t%d\n", k.label, k.verb, k.what, counts[k])
	}
	return nil
}

type window struct {
	label        string
	since, until time.Time
	agent        *regexp.Regexp
}

func readWindows(path string) ([]window, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []window
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		f := strings.Split(l, "\t")
		if len(f) != 4 {
			return nil, fmt.Errorf("%s: want label, since, until, agent: %q", path, l)
		}
		since, err1 := strconv.ParseInt(f[1], 10, 64)
		until, err2 := strconv.ParseInt(f[2], 10, 64)
		agent, err3 := regexp.Compile(f[3])
		if err := errors.Join(err1, err2, err3); err != nil {
			return nil, fmt.Errorf("%s: %q: %w", path, l, err)
		}
		out = append(out, window{f[0], time.Unix(0, since), time.Unix(0, until), agent})
	}
	return out, nil
}

// stamp copies lines from in to out, each prefixed with the unix time in ns
// at which it was read: when Terraform reported the event on that line.
func stamp(in io.Reader, out io.Writer) error {
	scanner := bufio.NewScanner(in)
	scanner.Buffer(make([]byte, 0, 64*1024), 4*1024*1024)
	w := bufio.NewWriter(out)
	for scanner.Scan() {
		fmt.Fprintf(w, "%d\t%s\n", time.Now().UnixNano(), scanner.Text())
	}
	if err := w.Flush(); err != nil {
		return err
	}
	return scanner.Err()
}

// reaction joins Terraform's "<resource>[i]: Creation complete" lines (when
// the provider's apply, and so its wait, returned) with the instant the health
// helper wrote Healthy=True on the entry of instance i (matched by address:
// instance i has cidrhost("10.10.0.0/16", i + 1) in every configuration) and
// prints "i<TAB>ms" per instance.
func reaction(stampedPath, healthPath, resource string) error {
	written, err := healthWrites(healthPath)
	if err != nil {
		return err
	}
	f, err := os.Open(stampedPath)
	if err != nil {
		return err
	}
	defer f.Close()
	line := regexp.MustCompile(`^(\d+)\t` + regexp.QuoteMeta(resource) + `\[(\d+)\]: Creation complete`)
	scanner := bufio.NewScanner(f)
	found := 0
	for scanner.Scan() {
		m := line.FindStringSubmatch(scanner.Text())
		if m == nil {
			continue
		}
		at, _ := strconv.ParseInt(m[1], 10, 64)
		index, _ := strconv.Atoi(m[2])
		address := instanceAddress(index)
		sent, ok := written[address]
		if !ok {
			return fmt.Errorf("%s[%d] completed but the health helper never wrote its entry (address %s)", resource, index, address)
		}
		fmt.Printf("%d\t%.3f\n", index, float64(at-sent)/1e6)
		found++
	}
	if found == 0 {
		return fmt.Errorf("no %q creation in %s", resource, stampedPath)
	}
	return scanner.Err()
}

// waitReturn prints, per instance, the time from the health write to the
// instant the provider's wait returned, as the provider logs it ("the wait is
// over", with the entry's address and the provider's own timestamp, ms): the
// reaction without Terraform's handling of the finished resource.
func waitReturn(logPath, healthPath string) error {
	written, err := healthWrites(healthPath)
	if err != nil {
		return err
	}
	f, err := os.Open(logPath)
	if err != nil {
		return err
	}
	defer f.Close()
	over := regexp.MustCompile(`the wait is over\b.*?\baddress=(\S+)`)
	stamp := regexp.MustCompile(`\btimestamp=(\S+)`)
	index := map[string]int{}
	for i := 0; i < 65536; i++ {
		index[instanceAddress(i)] = i
	}
	scanner := bufio.NewScanner(f)
	scanner.Buffer(make([]byte, 1<<20), 1<<20)
	found := 0
	for scanner.Scan() {
		m := over.FindStringSubmatch(scanner.Text())
		s := stamp.FindStringSubmatch(scanner.Text())
		if m == nil || s == nil {
			continue
		}
		at, err := time.Parse(time.RFC3339Nano, s[1])
		if err != nil {
			return fmt.Errorf("%s: timestamp %q: %w", logPath, s[1], err)
		}
		sent, ok := written[m[1]]
		if !ok {
			return fmt.Errorf("the wait for %s returned but the health helper never wrote its entry", m[1])
		}
		fmt.Printf("%d\t%.3f\n", index[m[1]], float64(at.UnixNano()-sent)/1e6)
		found++
	}
	if found == 0 {
		return fmt.Errorf("no \"the wait is over\" line in %s (TF_LOG_PROVIDER=INFO?)", logPath)
	}
	return scanner.Err()
}

// instanceAddress is cidrhost("10.10.0.0/16", i + 1), the address the
// configurations give instance i.
func instanceAddress(i int) string {
	host := i + 1
	return fmt.Sprintf("10.10.%d.%d", host/256, host%256)
}

// healthWrites maps entry address → instant the write was sent (unix ns).
func healthWrites(path string) (map[string]int64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	out := map[string]int64{}
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		fields := strings.Split(l, "\t")
		if len(fields) != 4 {
			continue
		}
		sent, err := strconv.ParseInt(fields[2], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%s: %q: %w", path, l, err)
		}
		out[fields[1]] = sent
	}
	return out, nil
}
