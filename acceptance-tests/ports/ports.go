// Package ports hands out loopback TCP ports for the components the tests
// start (etcd, kube-apiserver, istiod, the VM's agent).
//
// Asking the kernel for port 0 and closing the listener leaves a gap before
// the component binds. In that gap the port is fair game for two takers:
//   - any outgoing connection, because port 0 picks from the same ephemeral
//     range the kernel uses for the local side of connections;
//   - another test process running at the same time (acceptance.sh runs
//     ACC_JOBS `go test` processes, and `go test ./...` runs packages at once).
//
// CI lost a run to the first ("bind: address already in use" from istiod). So
// ports come from outside the ephemeral range, and each one is reserved with
// an flock on a file shared by every process on the machine. The kernel drops
// the lock when the process that took it exits, so nothing goes stale.
package ports

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// lowest is the first port handed out: well above the registered services
// that a developer machine may run.
const lowest = 10000

var (
	mu sync.Mutex
	// held keeps every reservation's file open, and so locked, for the life of
	// the process: components are restarted on the same port by fault tests.
	held []*os.File
)

// Loopback returns n distinct free addresses "127.0.0.1:port", each reserved
// for this process.
func Loopback(n int) ([]string, error) {
	ps, err := Take(n)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = net.JoinHostPort("127.0.0.1", strconv.Itoa(p))
	}
	return out, nil
}

// Take returns n distinct free ports, each reserved for this process.
func Take(n int) ([]int, error) {
	low, high := ephemeralRange()
	return take(n, candidates(low, high), lockDir())
}

func take(n int, pool []int, dir string) ([]int, error) {
	if err := os.MkdirAll(dir, 0o777); err != nil {
		return nil, fmt.Errorf("port reservations: %w", err)
	}
	mu.Lock()
	defer mu.Unlock()
	var out []int
	for _, i := range rand.Perm(len(pool)) {
		if len(out) == n {
			break
		}
		lock, ok := reserve(dir, pool[i])
		if !ok {
			continue
		}
		if !bindable(pool[i]) {
			lock.Close()
			continue
		}
		held = append(held, lock)
		out = append(out, pool[i])
	}
	if len(out) < n {
		return nil, fmt.Errorf("only %d of %d loopback ports outside the ephemeral range are free", len(out), n)
	}
	return out, nil
}

// reserve takes the machine-wide lock for port, or reports that another
// process (or an earlier call of this one) holds it.
func reserve(dir string, port int) (*os.File, bool) {
	f, err := os.OpenFile(filepath.Join(dir, strconv.Itoa(port)), os.O_CREATE|os.O_RDWR, 0o666)
	if err != nil {
		return nil, false
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, false
	}
	return f, true
}

// bindable is true when nothing listens on the port now (a process that is
// not ours, or one of ours whose reserving process has exited).
func bindable(port int) bool {
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return false
	}
	l.Close()
	return true
}

// candidates lists the ports from lowest to 65535 outside [low, high].
func candidates(low, high int) []int {
	var out []int
	for p := lowest; p <= 65535; p++ {
		if p < low || p > high {
			out = append(out, p)
		}
	}
	return out
}

// ephemeralRange is the kernel's range for the local side of connections.
func ephemeralRange() (int, int) {
	const defaultLow, defaultHigh = 32768, 60999
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return defaultLow, defaultHigh
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return defaultLow, defaultHigh
	}
	low, err1 := strconv.Atoi(f[0])
	high, err2 := strconv.Atoi(f[1])
	if err1 != nil || err2 != nil || low > high {
		return defaultLow, defaultHigh
	}
	return low, high
}

// lockDir is shared by every test process on the machine.
func lockDir() string {
	return filepath.Join(os.TempDir(), "terraform-provider-istio-ports")
}
