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
	line := regexp.MustCompile(`^(\d+)\t` + regexp.QuoteMeta(resource) + `\[(\d+)\]: Creation complete`)
	return joinWithWrites(stampedPath, healthPath, fmt.Sprintf("%q creation", resource), func(text string) (int, int64, bool, error) {
		m := line.FindStringSubmatch(text)
		if m == nil {
			return 0, 0, false, nil
		}
		at, _ := strconv.ParseInt(m[1], 10, 64)
		index, _ := strconv.Atoi(m[2])
		return index, at, true, nil
	})
}

// waitReturn prints, per instance, the time from the health write to the
// instant the provider's wait returned, as the provider logs it ("the wait is
// over", with the entry's address and the provider's own timestamp, ms): the
// reaction without Terraform's handling of the finished resource.
func waitReturn(logPath, healthPath string) error {
	over := regexp.MustCompile(`the wait is over\b.*?\baddress=10\.10\.(\d+)\.(\d+)\b`)
	stamp := regexp.MustCompile(`\btimestamp=(\S+)`)
	return joinWithWrites(logPath, healthPath, `"the wait is over" line (TF_LOG_PROVIDER=INFO?)`, func(text string) (int, int64, bool, error) {
		m, s := over.FindStringSubmatch(text), stamp.FindStringSubmatch(text)
		if m == nil || s == nil {
			return 0, 0, false, nil
		}
		at, err := time.Parse(time.RFC3339Nano, s[1])
		if err != nil {
			return 0, 0, false, fmt.Errorf("timestamp %q: %w", s[1], err)
		}
		high, _ := strconv.Atoi(m[1])
		low, _ := strconv.Atoi(m[2])
		return high*256 + low - 1, at.UnixNano(), true, nil // instanceAddress, inverted
	})
}

// joinWithWrites reads path line by line; for each line match recognizes, it
// prints "i<TAB>ms": from the health helper's write on instance i's entry to
// the instant (unix ns) the line gives.
func joinWithWrites(path, healthPath, what string, match func(line string) (index int, at int64, ok bool, err error)) error {
	written, err := healthWrites(healthPath)
	if err != nil {
		return err
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	scanner := bufio.NewScanner(f)
	scanner.Buffer(make([]byte, 1<<20), 1<<20)
	found := 0
	for scanner.Scan() {
		index, at, ok, err := match(scanner.Text())
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		if !ok {
			continue
		}
		address := instanceAddress(index)
		sent, ok := written[address]
		if !ok {
			return fmt.Errorf("instance %d finished but the health helper never wrote its entry (address %s)", index, address)
		}
		fmt.Printf("%d\t%.3f\n", index, float64(at-sent)/1e6)
		found++
	}
	if found == 0 {
		return fmt.Errorf("no %s in %s", what, path)
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
