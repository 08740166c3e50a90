package ports

import (
	"net"
	"os"
	"strconv"
	"testing"
)

func TestPortsAreOutsideTheEphemeralRangeAndDistinct(t *testing.T) {
	low, high := ephemeralRange()
	got, err := Take(50)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int]bool{}
	for _, p := range got {
		if p >= low && p <= high {
			t.Errorf("port %d is inside the ephemeral range %d-%d", p, low, high)
		}
		if p < lowest || p > 65535 {
			t.Errorf("port %d is outside %d-65535", p, lowest)
		}
		if seen[p] {
			t.Errorf("port %d handed out twice", p)
		}
		seen[p] = true
	}
	again, err := Take(50)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range again {
		if seen[p] {
			t.Errorf("port %d handed out again while still reserved", p)
		}
	}
}

func TestAPortReservedElsewhereIsSkipped(t *testing.T) {
	dir := t.TempDir()
	// flock locks belong to an open file, so this separate open conflicts with
	// take's exactly as another process's would.
	other, ok := reserve(dir, 20001)
	if !ok {
		t.Fatal("could not reserve port 20001 in an empty directory")
	}
	defer other.Close()

	got, err := take(1, []int{20001, 20002}, dir)
	if err != nil {
		t.Fatal(err)
	}
	if got[0] != 20002 {
		t.Fatalf("took port %d, want 20002 (20001 is reserved elsewhere)", got[0])
	}
	if _, err := take(1, []int{20001, 20002}, dir); err == nil {
		t.Fatal("took a port although both are reserved")
	}
}

func TestAPortSomeoneListensOnIsSkipped(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	busy := l.Addr().(*net.TCPAddr).Port
	if _, err := take(1, []int{busy}, t.TempDir()); err == nil {
		t.Fatalf("took port %d although something listens on it", busy)
	}
}

func TestEphemeralRangeIsTheKernels(t *testing.T) {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		t.Fatal(err)
	}
	low, high := ephemeralRange()
	if want := strconv.Itoa(low) + "\t" + strconv.Itoa(high) + "\n"; string(b) != want {
		t.Fatalf("read %d-%d, the kernel says %q", low, high, b)
	}
}
