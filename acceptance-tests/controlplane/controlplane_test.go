package controlplane

// Bad-environment behaviour, without building or starting the real
// components: fake binaries stand in for them.

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fakeTools points the tool variables at shell scripts; kube behaves like the
// multi-call binary (first argument = component).
func fakeTools(t *testing.T, kube string) {
	t.Helper()
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		return p
	}
	t.Setenv("TFPI_CACHE", dir)
	t.Setenv("TFPI_KUBE_TESTENV", write("kube-testenv", kube))
	t.Setenv("TFPI_PILOT_DISCOVERY", write("pilot-discovery", "exit 1"))
	t.Setenv("TFPI_ISTIOCTL", write("istioctl", "exit 1"))
	t.Setenv("TFPI_ISTIO_SAMPLES", dir)
}

func TestMissingBinaryIsExplained(t *testing.T) {
	fakeTools(t, "exit 1")
	t.Setenv("TFPI_PILOT_DISCOVERY", "/nonexistent/pilot-discovery")
	_, err := Start(context.Background(), Options{RunDir: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "pilot-discovery") || !strings.Contains(err.Error(), "make setup") {
		t.Fatalf("want an error naming pilot-discovery and make setup, got %v", err)
	}
}

func TestForeignRunDirIsRefused(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "precious.txt"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	err := prepareRunDir(dir)
	if err == nil || !strings.Contains(err.Error(), "not a control-plane run directory") {
		t.Fatalf("got %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "precious.txt")); err != nil {
		t.Fatal("foreign file removed")
	}
}

func TestStaleRunDirIsWiped(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, marker), nil, 0o644)
	os.WriteFile(filepath.Join(dir, pidsFile), []byte("etcd 999999999 1 /bin/sleep\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "etcd.log"), []byte("old"), 0o644)
	if err := prepareRunDir(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "etcd.log")); !os.IsNotExist(err) {
		t.Fatal("stale log not removed")
	}
}

// A component that never becomes ready: the error names it and its log, and
// nothing is left running; a live run directory is refused meanwhile.
func TestFailedStartNamesComponentAndStopsEverything(t *testing.T) {
	fakeTools(t, `echo "fake $1 starting"; exec sleep 300`)
	dir := filepath.Join(t.TempDir(), "run")
	start := time.Now()
	_, err := Start(context.Background(), Options{RunDir: dir, ReadyTimeout: 2 * time.Second})
	if err == nil {
		t.Fatal("start succeeded with a fake etcd")
	}
	msg := err.Error()
	for _, want := range []string{"etcd", filepath.Join(dir, "etcd.log"), "fake etcd starting"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not contain %q", msg, want)
		}
	}
	if time.Since(start) > 30*time.Second {
		t.Errorf("start took %s to give up", time.Since(start))
	}
	if running := Running(dir); len(running) > 0 {
		t.Fatalf("left running after a failed start: %v", running)
	}
	pids, _ := readPids(dir)
	if len(pids) != 1 || pids[0].name != "etcd" {
		t.Fatalf("pids file = %+v", pids)
	}
}

func TestLiveRunDirIsRefusedAndStopped(t *testing.T) {
	dir := t.TempDir()
	if err := prepareRunDir(dir); err != nil {
		t.Fatal(err)
	}
	cp := &ControlPlane{RunDir: dir}
	if _, err := cp.startProcess("etcd", dir, os.Environ(), "/bin/sleep", "300"); err != nil {
		t.Fatal(err)
	}
	err := prepareRunDir(dir)
	if err == nil || !strings.Contains(err.Error(), "already running") || !strings.Contains(err.Error(), "etcd (pid") {
		t.Fatalf("got %v", err)
	}
	if err := cp.Stop(); err != nil {
		t.Fatal(err)
	}
	if running := Running(dir); len(running) > 0 {
		t.Fatalf("still running: %v", running)
	}
}
