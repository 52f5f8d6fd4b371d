//go:build linux

// Package netns runs a test inside a private network namespace that the test
// makes itself, so that mDNS traffic (multicast to 224.0.0.251 and ff02::fb)
// never reaches the host's network. It is for tests only.
//
// The test binary re-executes itself with -test.run set to the one test and
// an environment marker, in a new network namespace (and a new user
// namespace when not root). Inside, loopback is brought up with MULTICAST
// and a 224.0.0.0/4 route, and the helper checks that lo is the only
// interface before the test goes on. Where namespaces cannot be made the
// test is skipped with the reason; it never falls back to the host network.
package netns

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// envChild marks a re-executed test binary: its value is the test's name
// (and, for a peer, the role after a "|").
const envChild = "ESPDECK_NETNS_CHILD"

// childTimeout bounds one re-executed test.
const childTimeout = 3 * time.Minute

// InChild reports whether this process is a re-executed child for the test
// named name.
func InChild(name string) bool {
	v := os.Getenv(envChild)
	return v == name || strings.HasPrefix(v, name+"|")
}

// Role returns the role a peer was started with ("" in a plain child).
func Role() string {
	_, role, _ := strings.Cut(os.Getenv(envChild), "|")
	return role
}

// Run isolates the calling top-level test. In the parent it re-executes the
// test inside a new network namespace, relays the child's output, fails if
// the child failed, skips if it skipped or if no namespace can be made, and
// returns false: the caller returns at once. Inside the namespace it sets up
// loopback, verifies that lo is the only interface and returns true.
func Run(t *testing.T) bool {
	t.Helper()
	if InChild(t.Name()) {
		setupLoopback(t)
		return true
	}
	if os.Getenv(envChild) != "" {
		t.Skip("another namespace test is running in this process")
	}
	if strings.Contains(t.Name(), "/") {
		t.Fatalf("netns.Run works for top-level tests only, not %s", t.Name())
	}
	ctx, cancel := context.WithTimeout(t.Context(), childTimeout)
	defer cancel()
	cmd := command(ctx, t.Name(), "", false)
	out, err := cmd.CombinedOutput()
	if err != nil && cmd.ProcessState == nil {
		t.Skipf("cannot create a network namespace here (%v); this test never runs on the host network — run it as root or where unprivileged user namespaces are allowed", err)
	}
	text := string(out)
	if err != nil {
		t.Fatalf("test inside the network namespace failed (%v):\n%s", err, text)
	}
	if strings.Contains(text, "--- SKIP: "+t.Name()) {
		t.Skipf("skipped inside the network namespace:\n%s", text)
	}
	t.Logf("inside the network namespace:\n%s", text)
	return false
}

// RunBenchmark is Run for a top-level benchmark. The child runs the
// benchmark once (-test.benchtime=1x; the benchmark takes its own samples);
// the parent logs the child's output and reports the child's metrics as its
// own, so `go test -bench` shows them on the parent's line.
func RunBenchmark(b *testing.B) bool {
	b.Helper()
	if InChild(b.Name()) {
		setupLoopback(b)
		return true
	}
	if os.Getenv(envChild) != "" {
		b.Skip("another namespace benchmark is running in this process")
	}
	ctx, cancel := context.WithTimeout(b.Context(), childTimeout)
	defer cancel()
	cmd := command(ctx, b.Name(), "", true)
	out, err := cmd.CombinedOutput()
	if err != nil && cmd.ProcessState == nil {
		b.Skipf("cannot create a network namespace here (%v); this benchmark never runs on the host network", err)
	}
	text := string(out)
	if err != nil || !strings.Contains(text, "\nPASS") {
		b.Fatalf("benchmark inside the network namespace failed (%v):\n%s", err, text)
	}
	b.Logf("inside the network namespace:\n%s", text)
	for _, line := range strings.Split(text, "\n") {
		f := strings.Fields(line)
		if len(f) < 4 || !strings.HasPrefix(f[0], b.Name()) {
			continue
		}
		for i := 2; i+1 < len(f); i += 2 {
			if v, err := strconv.ParseFloat(f[i], 64); err == nil {
				b.ReportMetric(v, f[i+1])
			}
		}
	}
	return false
}

// command builds the re-execution of this test binary for test (or
// benchmark) name, in a new network namespace (plus a user namespace when
// not root).
func command(ctx context.Context, name, role string, bench bool) *exec.Cmd {
	marker := name
	if role != "" {
		marker += "|" + role
	}
	sel := []string{"-test.run=^" + regexp.QuoteMeta(name) + "$"}
	if bench {
		sel = []string{"-test.run=^$", "-test.bench=^" + regexp.QuoteMeta(name) + "$", "-test.benchtime=1x"}
	}
	cmd := exec.CommandContext(ctx, os.Args[0],
		append(sel, "-test.v=true", "-test.count=1", "-test.timeout="+childTimeout.String())...)
	cmd.Env = append(os.Environ(), envChild+"="+marker)
	cmd.WaitDelay = 5 * time.Second
	attr := &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET, Pdeathsig: syscall.SIGKILL}
	if os.Geteuid() != 0 {
		attr.Cloneflags |= syscall.CLONE_NEWUSER
		attr.UidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Geteuid(), Size: 1}}
		attr.GidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getegid(), Size: 1}}
		attr.GidMappingsEnableSetgroups = false
	}
	cmd.SysProcAttr = attr
	return cmd
}

// setupLoopback brings lo up with MULTICAST and a route for 224.0.0.0/4 and
// checks that it is the only interface. Anything else fails the test: we
// must be sure no packet can leave.
func setupLoopback(t testing.TB) {
	t.Helper()
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("the ip command (Debian package iproute2) is needed to set up loopback in the namespace")
	}
	MustOnlyLoopback(t)
	// A sandbox may allow the namespace but not configuring it: that is
	// "no namespace to test in", not a failure of the code under test.
	for _, args := range [][]string{{"link", "set", "lo", "up", "multicast", "on"}, {"route", "add", "224.0.0.0/4", "dev", "lo"}} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Skipf("cannot set up loopback in the test's namespace (ip %s: %v: %s)", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
		}
	}
	MustOnlyLoopback(t)
	lo, err := net.InterfaceByName("lo")
	if err != nil || lo.Flags&net.FlagUp == 0 || lo.Flags&net.FlagMulticast == 0 {
		t.Fatalf("lo is not up with multicast after set-up (%v, flags %v)", err, lo.Flags)
	}
}

// MustOnlyLoopback fails the test unless lo is the only network interface.
func MustOnlyLoopback(t testing.TB) {
	t.Helper()
	ifs, err := net.Interfaces()
	if err != nil {
		t.Fatalf("list interfaces: %v", err)
	}
	if len(ifs) != 1 || ifs[0].Name != "lo" {
		var names []string
		for _, i := range ifs {
			names = append(names, i.Name)
		}
		t.Fatalf("refusing to go on: expected lo as the only interface in the test's namespace, found %v", names)
	}
}

// IP runs the ip command with args and fails the test on error.
func IP(t testing.TB, args ...string) {
	t.Helper()
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// Peer is a helper process in a network namespace of its own: the same test
// binary running one test with a role.
type Peer struct {
	Pid   int
	cmd   *exec.Cmd
	stdin io.WriteCloser
	lines chan string
	done  chan error
}

// StartPeer starts test name with role in a new network namespace. Its stdin
// stays open until Stop; a peer should end when stdin reaches EOF. Lines
// the peer prints can be awaited with WaitLine.
func StartPeer(t *testing.T, name, role string) *Peer {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), childTimeout)
	cmd := command(ctx, name, role, false)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		cancel()
		t.Skipf("cannot create a second network namespace (%v)", err)
	}
	p := &Peer{Pid: cmd.Process.Pid, cmd: cmd, stdin: stdin, lines: make(chan string, 256), done: make(chan error, 1)}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			t.Logf("peer %s: %s", role, sc.Text())
			select {
			case p.lines <- sc.Text():
			default:
			}
		}
		close(p.lines)
		p.done <- cmd.Wait()
		cancel()
	}()
	t.Cleanup(func() { p.Stop() })
	return p
}

// WaitLine waits for a line from the peer containing s.
func (p *Peer) WaitLine(s string, timeout time.Duration) error {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		select {
		case l, ok := <-p.lines:
			if !ok {
				return fmt.Errorf("peer ended before printing %q", s)
			}
			if strings.Contains(l, s) {
				return nil
			}
		case <-deadline.C:
			return fmt.Errorf("peer did not print %q within %v", s, timeout)
		}
	}
}

// Stop closes the peer's stdin and waits for it to end (killing it after 10 s).
func (p *Peer) Stop() {
	if p.stdin != nil {
		p.stdin.Close()
		p.stdin = nil
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			p.cmd.Process.Kill()
			<-p.done
		}
	}
}

// WaitStdinEOF blocks until stdin closes: the life of a peer.
func WaitStdinEOF() { io.Copy(io.Discard, os.Stdin) }
