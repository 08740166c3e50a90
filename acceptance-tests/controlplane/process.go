package controlplane

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// pidsFile lists every process a run started, one "component pid starttime
// executable" line each, in start order (starttime from /proc/PID/stat tells
// a reused pid apart). stop reads it, so it works from another process
// (the CLI) and after a failed start.
const pidsFile = "pids"

// process is one started component.
type process struct {
	name string
	log  string
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited (only for children of this process)
	err  error         // exit error, valid after done is closed
}

// exited reports whether the process has exited, with its error.
func (p *process) exited() (bool, error) {
	select {
	case <-p.done:
		return true, p.err
	default:
		return false, nil
	}
}

// startProcess starts a component in its own session (so stop can kill its
// whole process group), logging stdout and stderr to RUN_DIR/<name>.log, and
// records its pid before returning.
func (cp *ControlPlane) startProcess(name, dir string, env []string, bin string, args ...string) (*process, error) {
	logPath := filepath.Join(cp.RunDir, name+".log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	fmt.Fprintf(logFile, "# %s %s\n", bin, strings.Join(args, " "))
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Env = env
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if cp.opts.KillOnParentExit {
		// The test binary owns the control plane: if it dies (test timeout,
		// SIGKILL) the components die with it.
		cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("%s: cannot start %s: %w", name, bin, err)
	}
	p := &process{name: name, log: logPath, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	cp.procs = append(cp.procs, p)
	f, err := os.OpenFile(filepath.Join(cp.RunDir, pidsFile), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return p, err
	}
	defer f.Close()
	_, err = fmt.Fprintf(f, "%s %d %s %s\n", name, cmd.Process.Pid, startTime(cmd.Process.Pid), bin)
	return p, err
}

type recordedPid struct {
	name      string
	pid       int
	startTime string
	exe       string
}

// procStat returns the state and start time fields of /proc/PID/stat.
func procStat(pid int) (state, start string, ok bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return "", "", false
	}
	// Fields after the parenthesised command name: state is field 3, starttime field 22.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return "", "", false
	}
	fields := strings.Fields(string(b[i+1:]))
	if len(fields) < 20 {
		return "", "", false
	}
	return fields[0], fields[19], true
}

func startTime(pid int) string {
	_, start, _ := procStat(pid)
	return start
}

func readPids(runDir string) ([]recordedPid, error) {
	f, err := os.Open(filepath.Join(runDir, pidsFile))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []recordedPid
	s := bufio.NewScanner(f)
	for s.Scan() {
		fields := strings.SplitN(s.Text(), " ", 4)
		if len(fields) != 4 {
			continue
		}
		pid, err := strconv.Atoi(fields[1])
		if err != nil {
			continue
		}
		out = append(out, recordedPid{name: fields[0], pid: pid, startTime: fields[2], exe: fields[3]})
	}
	return out, s.Err()
}

// alive reports whether the recorded process still runs (a dead, zombie or
// reused pid counts as not alive).
func (r recordedPid) alive() bool {
	state, start, ok := procStat(r.pid)
	return ok && state != "Z" && start == r.startTime
}

// runningPids returns the recorded processes of runDir that are still alive.
func runningPids(runDir string) []recordedPid {
	pids, _ := readPids(runDir)
	var out []recordedPid
	for _, p := range pids {
		if p.alive() {
			out = append(out, p)
		}
	}
	return out
}

// StopRunDir stops every recorded process of a run directory, newest first:
// SIGTERM to its process group, then SIGKILL after a grace period. It is safe
// to call more than once and after a failed start.
func StopRunDir(runDir string) error {
	pids, err := readPids(runDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var failed []string
	for i := len(pids) - 1; i >= 0; i-- {
		p := pids[i]
		if !p.alive() {
			continue
		}
		_ = syscall.Kill(-p.pid, syscall.SIGTERM)
		deadline := time.Now().Add(15 * time.Second)
		for p.alive() && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		if p.alive() {
			_ = syscall.Kill(-p.pid, syscall.SIGKILL)
			deadline = time.Now().Add(5 * time.Second)
			for p.alive() && time.Now().Before(deadline) {
				time.Sleep(50 * time.Millisecond)
			}
		}
		if p.alive() {
			failed = append(failed, fmt.Sprintf("%s (pid %d)", p.name, p.pid))
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("could not stop %s", strings.Join(failed, ", "))
	}
	return nil
}

// tail returns the last n lines of a log file, for error messages.
func tail(file string, n int) string {
	b, err := os.ReadFile(file)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
