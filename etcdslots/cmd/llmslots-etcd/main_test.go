//go:build unix

package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/llmslots/llmslots"
	"github.com/llmslots/llmslots/etcdslots/internal/etcdtest"
	"go.etcd.io/etcd/server/v3/embed"
)

// The tests run the command as a user would, as a process, against a real
// etcd member started here (etcd's embed package, in this process). The
// command is this test binary, which runs main's dispatch when mainEnv is
// set: no separate build, and the race detector watches the command too.
const mainEnv = "LLMSLOTS_ETCD_TEST_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(mainEnv) != "" {
		if len(os.Args) > 1 && os.Args[1] == childArg {
			os.Exit(slotChild(os.Args[2:]))
		}
		os.Exit(dispatch(os.Args[1:], os.Stdout, os.Stderr))
	}
	code := m.Run()
	member.mu.Lock()
	if member.e != nil {
		member.e.Close()
		os.RemoveAll(member.dir)
	}
	member.mu.Unlock()
	os.Exit(code)
}

var member struct {
	mu   sync.Mutex
	e    *embed.Etcd
	dir  string
	addr string
}

// etcdAddr returns the shared member's client address, starting it on
// first use; each test uses pools of its own.
func etcdAddr(t *testing.T) string {
	t.Helper()
	member.mu.Lock()
	defer member.mu.Unlock()
	if member.e == nil {
		dir, err := os.MkdirTemp("", "llmslots-etcd-test-")
		if err != nil {
			t.Fatal(err)
		}
		c := etcdtest.NewCluster(dir, 1)[0]
		start := time.Now()
		e, err := c.Start()
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("etcd member ready in %v", time.Since(start).Round(time.Millisecond))
		member.e, member.dir, member.addr = e, dir, c.ClientAddr()
	}
	return member.addr
}

// env is the environment of the command under test: no LLMSLOTS_*
// variables but a slot directory of the test's own, plus extra.
func env(t *testing.T, extra ...string) []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "LLMSLOTS_") && !strings.HasPrefix(kv, "GORACE=") {
			out = append(out, kv)
		}
	}
	return append(append(out, mainEnv+"=1", "LLMSLOTS_DIR="+t.TempDir(), "GORACE=atexit_sleep_ms=0"), extra...)
}

func self(t *testing.T) string {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return exe
}

type result struct {
	stdout, stderr string
	code           int
	took           time.Duration
}

// run runs the command with args to its end (at most 30 s).
func run(t *testing.T, environ []string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, self(t), args...)
	cmd.Env = environ
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	start := time.Now()
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errb.String(), took: time.Since(start)}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	default:
		t.Fatalf("%q: %v", args, err)
	}
	if ctx.Err() != nil {
		t.Fatalf("%q did not finish within 30s", args)
	}
	return r
}

// proc is a command running in the background; its stdin is ours, its
// stdout read line by line.
type proc struct {
	t     *testing.T
	cmd   *exec.Cmd
	stdin io.WriteCloser
	lines chan string
	errb  *lockedBuffer
	done  chan struct{}
	code  int
}

type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func start(t *testing.T, environ []string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(self(t), args...)
	cmd.Env = environ
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := &proc{t: t, cmd: cmd, stdin: stdin, lines: make(chan string, 100), errb: &lockedBuffer{}, done: make(chan struct{})}
	cmd.Stderr = p.errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			p.lines <- sc.Text()
		}
		close(p.lines)
		cmd.Wait()
		p.code = cmd.ProcessState.ExitCode()
		close(p.done)
	}()
	t.Cleanup(func() {
		stdin.Close()
		cmd.Process.Kill() // on Linux its command gets SIGTERM (Pdeathsig)
		<-p.done
	})
	return p
}

// line returns the next line of output.
func (p *proc) line(timeout time.Duration) string {
	p.t.Helper()
	select {
	case l, ok := <-p.lines:
		if !ok {
			p.t.Fatalf("%q: no more output; stderr: %s", p.cmd.Args, p.errb)
		}
		return l
	case <-time.After(timeout):
		p.t.Fatalf("%q: no line within %v; stderr: %s", p.cmd.Args, timeout, p.errb)
	}
	return ""
}

func (p *proc) wait(timeout time.Duration) int {
	p.t.Helper()
	select {
	case <-p.done:
		return p.code
	case <-time.After(timeout):
		p.t.Fatalf("%q did not exit within %v; stderr: %s", p.cmd.Args, timeout, p.errb)
	}
	return -1
}

func poolName(t *testing.T) string {
	return fmt.Sprintf("%s-%d", strings.ToLower(strings.ReplaceAll(t.Name(), "/", "-")), time.Now().UnixNano()%1e9)
}

// readStatus runs status --json.
func readStatus(t *testing.T, environ []string, args ...string) llmslots.Status {
	t.Helper()
	r := run(t, environ, append([]string{"status", "--json"}, args...)...)
	if r.code != 0 {
		t.Fatalf("status: exit %d: %s", r.code, r.stderr)
	}
	var st llmslots.Status
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil {
		t.Fatalf("status --json: %v\n%s", err, r.stdout)
	}
	return st
}

// Two runs with max 1: the second, with --wait 0, exits 75 naming the
// holder; a third waits in line, status shows the holder and the waiter,
// and the waiter runs once the holder's command ends. The endpoints come
// from LLMSLOTS_ETCD here, from --etcd in the other tests.
func TestRunBusyStatusAndHandoff(t *testing.T) {
	addr := etcdAddr(t)
	pool := poolName(t)
	e := env(t, "LLMSLOTS_ETCD="+addr)
	common := []string{"--pool", pool, "--max", "1"}
	holder := start(t, e, append(append([]string{"run"}, common...), "--label", "first", "--", "sh", "-c", `echo "held $LLMSLOTS_ETCD_SLOT $LLMSLOTS_ETCD_TOKEN"; read x; exit 0`)...)
	var slot int
	var token int64
	if n, _ := fmt.Sscanf(holder.line(10*time.Second), "held %d %d", &slot, &token); n != 2 || slot != 0 || token <= 0 {
		t.Fatalf("the command saw slot %d, token %d", slot, token)
	}

	busy := run(t, e, append(append([]string{"run"}, common...), "--wait", "0", "--", "true")...)
	if busy.code != exitBusy || !strings.Contains(busy.stderr, fmt.Sprintf("%d@", holder.cmd.Process.Pid)) {
		t.Errorf("run --wait 0 on a full pool: exit %d, %q; want %d naming pid %d", busy.code, busy.stderr, exitBusy, holder.cmd.Process.Pid)
	}
	t.Logf("busy after %v: %s", busy.took.Round(time.Millisecond), strings.TrimSpace(busy.stderr))

	waiter := start(t, e, append(append([]string{"run"}, common...), "--wait", "20s", "--label", "second", "--", "sh", "-c", `echo "got $LLMSLOTS_ETCD_SLOT"`)...)
	var st llmslots.Status
	deadline := time.Now().Add(10 * time.Second)
	for {
		st = readStatus(t, e, common...)
		if len(st.Waiting) == 1 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	host, _ := os.Hostname()
	if st.Dir != "etcd://llmslots/"+pool || st.Active != 1 || st.Free != 0 || len(st.Slots) != 1 {
		t.Fatalf("status: %+v", st)
	}
	if s := st.Slots[0]; s.State != llmslots.StateHeld || s.PID != holder.cmd.Process.Pid || s.Host != host || s.Label != "first" {
		t.Errorf("slot 0: %+v; want held by pid %d on %s, label first", s, holder.cmd.Process.Pid, host)
	}
	if len(st.Waiting) != 1 || st.Waiting[0].PID != waiter.cmd.Process.Pid || st.Waiting[0].Label != "second" {
		t.Errorf("waiting: %+v; want pid %d, label second", st.Waiting, waiter.cmd.Process.Pid)
	}
	table := run(t, e, append([]string{"status"}, common...)...)
	for _, want := range []string{"pool etcd://llmslots/" + pool + " (max 1): 1 held, 0 free", "held", "first", "1 waiting", "second"} {
		if !strings.Contains(table.stdout, want) {
			t.Errorf("status does not say %q:\n%s", want, table.stdout)
		}
	}

	holder.stdin.Close()
	if code := holder.wait(10 * time.Second); code != 0 {
		t.Errorf("holder: exit %d, %s", code, holder.errb)
	}
	if l := waiter.line(10 * time.Second); l != "got 0" {
		t.Errorf("waiter's command said %q", l)
	}
	if code := waiter.wait(10 * time.Second); code != 0 {
		t.Errorf("waiter: exit %d, %s", code, waiter.errb)
	}
}

// A holder cut off from the cluster loses its slot: run sends its command
// SIGTERM (which this one traps and ignores, writing a marker), SIGKILL
// after --grace, and exits 76, within the TTL of the cut plus the grace.
func TestRunStopsCommandWhenSlotIsLost(t *testing.T) {
	addr := etcdAddr(t)
	px, err := etcdtest.NewProxy(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer px.Close()
	marker := filepath.Join(t.TempDir(), "marker")
	const ttl, grace = 2 * time.Second, 500 * time.Millisecond
	p := start(t, env(t), "run", "--etcd", px.URL(), "--pool", poolName(t), "--max", "1", "--ttl", ttl.String(), "--grace", grace.String(), "--",
		"sh", "-c", `trap 'echo term >> "$0"' TERM; echo started; while :; do sleep 0.05; done`, marker)
	if l := p.line(10 * time.Second); l != "started" {
		t.Fatalf("command said %q", l)
	}
	cut := time.Now()
	px.Cut()
	code := p.wait(ttl + grace + 5*time.Second)
	took := time.Since(cut)
	if code != exitLost {
		t.Errorf("exit %d after the cut; want %d; stderr: %s", code, exitLost, p.errb)
	}
	if b, _ := os.ReadFile(marker); string(b) != "term\n" {
		t.Errorf("the command's marker says %q; want one SIGTERM", b)
	}
	stderr := p.errb.String()
	for _, want := range []string{"may be lost", "SIGTERM", "sending SIGKILL"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr does not say %q: %s", want, stderr)
		}
	}
	if took > ttl+grace+time.Second {
		t.Errorf("run exited %v after the cut; want within TTL %v + grace %v", took, ttl, grace)
	}
	t.Logf("exit %d, %v after the cut: %s", code, took.Round(time.Millisecond), strings.TrimSpace(stderr))
}

// SIGTERM to run reaches its command, and run exits with its status.
func TestRunForwardsSignals(t *testing.T) {
	addr := etcdAddr(t)
	p := start(t, env(t), "run", "--etcd", addr, "--pool", poolName(t), "--max", "1", "--",
		"sh", "-c", `trap 'echo got TERM; exit 7' TERM; echo started; while :; do sleep 0.05; done`)
	if l := p.line(10 * time.Second); l != "started" {
		t.Fatalf("command said %q", l)
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	if l := p.line(5 * time.Second); l != "got TERM" {
		t.Errorf("command said %q", l)
	}
	if code := p.wait(5 * time.Second); code != 7 {
		t.Errorf("exit %d; want the command's 7", code)
	}
}

// With --local-max the host's pool of the same name bounds this host:
// a second run on the host is busy although the cluster pool has room.
func TestRunLocalMax(t *testing.T) {
	addr := etcdAddr(t)
	pool := poolName(t)
	e := env(t)
	args := []string{"run", "--etcd", addr, "--pool", pool, "--max", "5", "--local-max", "1"}
	holder := start(t, e, append(args, "--", "sh", "-c", "echo held; read x; exit 0")...)
	if l := holder.line(10 * time.Second); l != "held" {
		t.Fatalf("command said %q", l)
	}
	r := run(t, e, append(args, "--wait", "0", "--", "true")...)
	if r.code != exitBusy || strings.Contains(r.stderr, "etcd://") {
		t.Errorf("second run on the host: exit %d, %q; want %d, busy on the host's pool", r.code, r.stderr, exitBusy)
	}
	st := readStatus(t, e, "--etcd", addr, "--pool", pool, "--max", "5")
	if st.Active != 1 {
		t.Errorf("cluster pool: %d held; want 1", st.Active)
	}
	holder.stdin.Close()
	if code := holder.wait(10 * time.Second); code != 0 {
		t.Errorf("holder: exit %d, %s", code, holder.errb)
	}
}

// Nothing listens at the endpoint: run and status say the cluster is
// unavailable, exit 69, within their wait.
func TestUnavailable(t *testing.T) {
	addr := fmt.Sprintf("127.0.0.1:%d", etcdtest.FreePort())
	e := env(t)
	r := run(t, e, "run", "--etcd", addr, "--pool", "p", "--max", "1", "--wait", "1s", "--", "true")
	if r.code != exitUnavailable || !strings.Contains(r.stderr, "did not answer") || r.took > 3*time.Second {
		t.Errorf("run: exit %d after %v, %q; want %d within about a second", r.code, r.took, r.stderr, exitUnavailable)
	}
	t.Logf("run: exit %d after %v: %s", r.code, r.took.Round(time.Millisecond), strings.TrimSpace(r.stderr))
	r = run(t, e, "status", "--etcd", addr, "--pool", "p", "--max", "1", "--timeout", "1s")
	if r.code != exitUnavailable || !strings.Contains(r.stderr, "did not answer") || r.took > 3*time.Second {
		t.Errorf("status: exit %d after %v, %q; want %d within about a second", r.code, r.took, r.stderr, exitUnavailable)
	}
}

// Usage errors are said before anything is asked of a cluster.
func TestUsage(t *testing.T) {
	e := env(t)
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"run", "--max", "1", "--", "true"}, "give --etcd ENDPOINTS or set LLMSLOTS_ETCD"},
		{[]string{"run", "--etcd", "127.0.0.1:1", "--", "true"}, "--max N is required"},
		{[]string{"run", "--etcd", "127.0.0.1:1", "--max", "1"}, "no command given"},
		{[]string{"run", "--etcd", "127.0.0.1:1", "--max", "1", "--exec", "--", "true"}, "--exec cannot be used with a cluster slot"},
		{[]string{"run", "--etcd", "127.0.0.1:1", "--max", "1", "--pool", "a/b", "--", "true"}, "pool name may hold only [a-z0-9._-]"},
		{[]string{"run", "--etcd", "127.0.0.1:1", "--max", "1", "--pool", "Codex", "--", "true"}, "lowercase"},
		{[]string{"run", "--etcd", "127.0.0.1:1", "--max", "1", "--ttl", "10ms", "--", "true"}, "TTL must be"},
		{[]string{"run", "--etcd", "127.0.0.1:1", "--max", "1", "--user", "u", "--", "true"}, "LLMSLOTS_ETCD_PASSWORD"},
		{[]string{"run", "--etcd", "127.0.0.1:1", "--max", "1", "--ttl", "2s", "--grace", "10s", "--", "true"}, "--grace 10s does not fit --ttl 2s"},
		{[]string{"run", "--etcd", "127.0.0.1:1", "--max", "1", "--grace", "2s", "--", "true"}, "--grace can be at most 1.8s (TTL/2, less the loss margin 500ms and 200ms for SIGKILL); lower --grace, or raise --ttl to 6s or more"},
		{[]string{"status", "--etcd", "127.0.0.1:1", "--max", "0"}, "--max must be 1..1024"},
		{[]string{"frob"}, "unknown subcommand"},
	} {
		r := run(t, e, tt.args...)
		if r.code != exitUsage || !strings.Contains(r.stderr, tt.want) {
			t.Errorf("%q: exit %d, %q; want %d saying %q", tt.args, r.code, r.stderr, exitUsage, tt.want)
		}
	}
	r := run(t, e, "run", "--etcd", "127.0.0.1:1", "--max", "1", "--", "no-such-command-here")
	if r.code != exitNotFound {
		t.Errorf("a missing command: exit %d, %q; want %d", r.code, r.stderr, exitNotFound)
	}
	r = run(t, e, "run", "--help")
	if r.code != 0 || !strings.Contains(r.stdout, "--local-max N") {
		t.Errorf("run --help: exit %d, %q", r.code, r.stdout)
	}
}

// "llmslots run --etcd" and "llmslots status --etcd", the core command
// built here, find llmslots-etcd next to themselves (this test binary,
// linked there) and hand it their arguments.
func TestThroughLlmslots(t *testing.T) {
	addr := etcdAddr(t)
	dir := t.TempDir()
	core := filepath.Join(dir, "llmslots")
	start := time.Now()
	build := exec.Command("go", "build", "-o", core, "github.com/llmslots/llmslots/cmd/llmslots")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building llmslots: %v\n%s", err, out)
	}
	t.Logf("llmslots built in %v", time.Since(start).Round(time.Millisecond))
	if err := os.Symlink(self(t), filepath.Join(dir, "llmslots-etcd")); err != nil {
		t.Fatal(err)
	}
	pool := poolName(t)
	e := env(t)
	cmd := exec.Command(core, "run", "--etcd", addr, "--pool", pool, "--max", "2", "--label", "via-core", "--", "sh", "-c", `echo "slot $LLMSLOTS_ETCD_SLOT"; exit 3`)
	cmd.Env = e
	out, err := cmd.Output()
	if code := cmd.ProcessState.ExitCode(); code != 3 || string(out) != "slot 0\n" {
		t.Errorf("llmslots run --etcd: exit %d (%v), %q; want 3 and \"slot 0\"", code, err, out)
	}
	cmd = exec.Command(core, "status", "--json", "--pool", pool, "--max", "2")
	cmd.Env = append(e, "LLMSLOTS_ETCD="+addr)
	out, err = cmd.Output()
	var st llmslots.Status
	if err != nil || json.Unmarshal(out, &st) != nil || st.Dir != "etcd://llmslots/"+pool || st.Free != 2 {
		t.Errorf("llmslots status with LLMSLOTS_ETCD: %v, %s", err, out)
	}
}

// childArg makes this test binary a command that run runs holding the
// slot: slotChild.
const childArg = "slot-child"

// slotChild is a command run under a slot: slot-child LOG LOCK NAME
// TERMSLEEP. It writes its own start (and any exit it lives to see) to LOG,
// so the test judges the commands by what they did, not by the
// supervisor's account. It holds an flock on LOCK for as long as it lives;
// the kernel lets go of it only when the process is gone, SIGKILL
// included, so a command that finds LOCK taken when it starts ran beside
// another: it writes "overlap". On SIGTERM it waits TERMSLEEP before
// exiting, as a command that cleans up slowly does; with TERMSLEEP 0 it
// exits at once after starting.
func slotChild(args []string) int {
	if len(args) != 4 {
		fmt.Fprintln(os.Stderr, "usage: slot-child LOG LOCK NAME TERMSLEEP")
		return 2
	}
	logPath, lockPath, who := args[0], args[1], args[2]
	termSleep, err := time.ParseDuration(args[3])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	note := func(what string) {
		f, err := os.OpenFile(logPath, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
		if err == nil {
			fmt.Fprintf(f, "%s %s %d\n", who, what, time.Now().UnixNano())
			f.Close()
		}
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM)
	lock, err := os.OpenFile(lockPath, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) != nil {
		note("overlap")
		syscall.Flock(int(lock.Fd()), syscall.LOCK_EX)
	}
	note("start")
	fmt.Println("started")
	if termSleep == 0 {
		note("exit")
		return 0
	}
	<-sigs
	note("term")
	time.Sleep(termSleep)
	note("exit")
	return 0
}

// childEvents reads a slotChild log: who+" "+what -> when.
func childEvents(t *testing.T, path string) map[string]time.Time {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	evs := map[string]time.Time{}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var who, what string
		var ns int64
		if n, _ := fmt.Sscanf(line, "%s %s %d", &who, &what, &ns); n == 3 {
			evs[who+" "+what] = time.Unix(0, ns)
		}
	}
	return evs
}

// Issue 22: host A holds the slot (max 1, TTL 2 s) and its link to etcd
// is cut; its command takes 3 s to exit after SIGTERM. Host B, waiting
// through a proxy of its own, must not start its command while A's still
// runs: run must have A's command gone, SIGKILL at the latest, before A's
// lease could expire and the slot be granted again. With the grace not
// counted against the lease, B started 0.28 s after A's SIGTERM and ran
// beside it for 2.7 s.
func TestLostSlotCommandGoneBeforeRegrant(t *testing.T) {
	addr := etcdAddr(t)
	pxA, err := etcdtest.NewProxy(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer pxA.Close()
	pxB, err := etcdtest.NewProxy(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer pxB.Close()
	dir := t.TempDir()
	logPath, lockPath := filepath.Join(dir, "log"), filepath.Join(dir, "lock")
	pool := poolName(t)
	e := env(t)
	common := []string{"--pool", pool, "--max", "1", "--ttl", "2s"}
	a := start(t, e, append(append([]string{"run", "--etcd", pxA.URL()}, common...), "--", self(t), childArg, logPath, lockPath, "A", "3s")...)
	if l := a.line(10 * time.Second); l != "started" {
		t.Fatalf("A's command said %q", l)
	}
	b := start(t, e, append(append([]string{"run", "--etcd", pxB.URL(), "--wait", "20s"}, common...), "--", self(t), childArg, logPath, lockPath, "B", "0")...)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		st := readStatus(t, e, append([]string{"--etcd", addr}, common[:4]...)...)
		if len(st.Waiting) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("B is not in line: %+v", st)
		}
	}
	pxA.Cut()
	if code := a.wait(15 * time.Second); code != exitLost {
		t.Errorf("A: exit %d; want %d; stderr: %s", code, exitLost, a.errb)
	}
	if l := b.line(15 * time.Second); l != "started" {
		t.Fatalf("B's command said %q", l)
	}
	if code := b.wait(10 * time.Second); code != 0 {
		t.Errorf("B: exit %d; stderr: %s", code, b.errb)
	}
	ev := childEvents(t, logPath)
	term, bStart := ev["A term"], ev["B start"]
	if term.IsZero() || bStart.IsZero() {
		t.Fatalf("the commands' log lacks A's SIGTERM or B's start: %v", ev)
	}
	if over, ok := ev["B overlap"]; ok {
		t.Errorf("B's command started %v after A's SIGTERM while A's command still ran (A wrote its exit %v after its SIGTERM; 0 if it was SIGKILLed)",
			over.Sub(term).Round(10*time.Millisecond), ev["A exit"].Sub(term).Round(10*time.Millisecond))
	}
	t.Logf("A's command got SIGTERM, B's started %v later; A's stderr: %s", bStart.Sub(term).Round(10*time.Millisecond), strings.TrimSpace(a.errb.String()))
}
