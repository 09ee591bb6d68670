//go:build unix

package etcdtest

import (
	"bufio"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/llmslots/llmslots/etcdslots"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

const hostEnv = "ETCDSLOTS_TEST_HOST"

// HostConfig says what a host process does: Rounds times (0: until
// killed) acquire a slot of Pool (first Max), hold it for Hold plus up to
// Jitter, unless Lost closes first, and release it.
type HostConfig struct {
	Endpoints []string
	Pool      string
	Max       int
	TTL       time.Duration
	Hold      time.Duration
	Jitter    time.Duration
	Wait      time.Duration // per Acquire; 0 means a minute
	Rounds    int
	Label     string
	// ReportEvery > 0: on every ReportEvery-th round (the first included)
	// the host reports its work throttled (Guard.Throttled) with the hint
	// ReportHint right after "start", and logs "reported".
	ReportEvery int
	ReportHint  time.Duration
}

// An Event is one line a host logs. Kinds: "ready", "waiting", "start"
// (holds Slot with Token), "reported" (Throttled returned; Msg: its
// error), "end" (stopped work, before Release), "lost"
// (Lost closed while holding: stopped work), "released", "err" (Acquire
// failed; Msg says why), "done".
type Event struct {
	Host  int
	Kind  string
	At    time.Time
	Slot  int
	Token int64
	Msg   string
}

// quietLogger keeps the etcd client's retry warnings out of the hosts'
// logs, which the tests parse.
func quietLogger() *zap.Logger { return zap.NewNop() }

func logEvent(kind string, slot int, token int64, msg string) {
	// One write per line, so lines of one process never interleave.
	fmt.Fprintf(os.Stdout, "%s %d %d %d %s\n", kind, time.Now().UnixNano(), slot, token, strings.ReplaceAll(msg, "\n", " "))
}

func runHost(v string) {
	var c HostConfig
	if err := json.Unmarshal([]byte(v), &c); err != nil {
		fmt.Fprintln(os.Stderr, "bad host config:", err)
		os.Exit(2)
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: c.Endpoints, DialTimeout: 2 * time.Second, Logger: quietLogger()})
	if err != nil {
		logEvent("err", -1, 0, err.Error())
		os.Exit(1)
	}
	opts := []etcdslots.Option{etcdslots.WithLabel(c.Label)}
	if c.TTL > 0 {
		opts = append(opts, etcdslots.WithTTL(c.TTL))
	}
	pool, err := etcdslots.NewPool(cli, c.Pool, opts...)
	if err != nil {
		logEvent("err", -1, 0, err.Error())
		os.Exit(1)
	}
	wait := c.Wait
	if wait == 0 {
		wait = time.Minute
	}
	logEvent("ready", -1, 0, "")
	for r := 0; c.Rounds == 0 || r < c.Rounds; r++ {
		logEvent("waiting", -1, 0, "")
		g, err := pool.Acquire(c.Max, wait)
		if err != nil {
			logEvent("err", -1, 0, err.Error())
			time.Sleep(50 * time.Millisecond)
			continue
		}
		select {
		case <-g.Lost():
			// Lost before the work began (a pause right after the grant):
			// a careful caller does not start.
			logEvent("lost-before-start", g.SlotID(), g.Token(), g.Err().Error())
			_ = g.Release()
			continue
		default:
		}
		logEvent("start", g.SlotID(), g.Token(), "")
		if c.ReportEvery > 0 && r%c.ReportEvery == 0 {
			msg := ""
			if err := g.Throttled(c.ReportHint); err != nil {
				msg = err.Error()
			}
			logEvent("reported", g.SlotID(), g.Token(), msg)
		}
		hold := c.Hold
		if c.Jitter > 0 {
			hold += rand.N(c.Jitter)
		}
		select {
		case <-time.After(hold):
			logEvent("end", g.SlotID(), g.Token(), "")
		case <-g.Lost():
			logEvent("lost", g.SlotID(), g.Token(), g.Err().Error())
		}
		err = g.Release()
		msg := ""
		if err != nil {
			msg = err.Error()
		}
		logEvent("released", g.SlotID(), g.Token(), msg)
	}
	logEvent("done", -1, 0, "")
}

// A Host is a host process started by StartHost.
type Host struct {
	N     int
	Proxy *Proxy
	Cmd   *exec.Cmd

	mu      sync.Mutex
	events  []Event
	killed  time.Time // when it was SIGKILLed (zero if not)
	stopped time.Time
	notify  chan struct{}
	exited  chan struct{}
}

// StartHost starts host n in a child process, reaching upstreams through
// its own proxy (cfg.Endpoints is set to the proxy).
func StartHost(n int, cfg HostConfig, upstreams ...string) (*Host, error) {
	px, err := NewProxy(upstreams...)
	if err != nil {
		return nil, err
	}
	cfg.Endpoints = []string{px.URL()}
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	b, _ := json.Marshal(cfg)
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), hostEnv+"="+string(b))
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		px.Close()
		return nil, err
	}
	h := &Host{N: n, Proxy: px, Cmd: cmd, notify: make(chan struct{}, 1), exited: make(chan struct{})}
	go func() {
		defer close(h.exited)
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			ev, ok := parseEvent(n, sc.Text())
			if !ok {
				continue
			}
			h.mu.Lock()
			h.events = append(h.events, ev)
			h.mu.Unlock()
			select {
			case h.notify <- struct{}{}:
			default:
			}
		}
		_ = cmd.Wait()
	}()
	return h, nil
}

func parseEvent(n int, line string) (Event, bool) {
	f := strings.SplitN(line, " ", 5)
	if len(f) < 4 {
		return Event{}, false
	}
	ns, err1 := strconv.ParseInt(f[1], 10, 64)
	slot, err2 := strconv.Atoi(f[2])
	tok, err3 := strconv.ParseInt(f[3], 10, 64)
	if err1 != nil || err2 != nil || err3 != nil {
		return Event{}, false
	}
	ev := Event{Host: n, Kind: f[0], At: time.Unix(0, ns), Slot: slot, Token: tok}
	if len(f) == 5 {
		ev.Msg = f[4]
	}
	return ev, true
}

// Events returns the events so far.
func (h *Host) Events() []Event {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]Event(nil), h.events...)
}

// WaitFor waits until the host has logged the count-th event of kind
// (1-based) and returns it; false on timeout or exit.
func (h *Host) WaitFor(kind string, count int, timeout time.Duration) (Event, bool) {
	deadline := time.After(timeout)
	for {
		seen := 0
		for _, ev := range h.Events() {
			if ev.Kind == kind {
				seen++
				if seen == count {
					return ev, true
				}
			}
		}
		select {
		case <-h.notify:
		case <-deadline:
			return Event{}, false
		case <-h.exited:
			// One last look after the output is drained.
			for _, ev := range h.Events() {
				if ev.Kind == kind {
					seen--
					if seen == 0 {
						return ev, true
					}
				}
			}
			return Event{}, false
		}
	}
}

// Kill SIGKILLs the host and records when; its work ends then. Killing a
// host that has exited changes nothing.
func (h *Host) Kill() time.Time {
	select {
	case <-h.exited:
		h.mu.Lock()
		defer h.mu.Unlock()
		return h.killed
	default:
	}
	_ = h.Cmd.Process.Signal(syscall.SIGKILL)
	t := time.Now()
	h.mu.Lock()
	if h.killed.IsZero() {
		h.killed = t
	}
	h.mu.Unlock()
	<-h.exited
	return t
}

// Stop SIGSTOPs the host and records when; it does no work while stopped.
func (h *Host) Stop() time.Time {
	_ = h.Cmd.Process.Signal(syscall.SIGSTOP)
	t := time.Now()
	h.mu.Lock()
	h.stopped = t
	h.mu.Unlock()
	return t
}

// Cont resumes a stopped host.
func (h *Host) Cont() { _ = h.Cmd.Process.Signal(syscall.SIGCONT) }

// Close kills the host if it runs and closes its proxy.
func (h *Host) Close() {
	select {
	case <-h.exited:
	default:
		h.Kill()
	}
	h.Proxy.Close()
}

// Wait waits for the host to exit on its own.
func (h *Host) Wait(timeout time.Duration) bool {
	select {
	case <-h.exited:
		return true
	case <-time.After(timeout):
		return false
	}
}

// An Interval is a stretch of time a host worked holding a slot, by its
// own log: from "start" to "end" or "lost", or to its SIGKILL or SIGSTOP.
type Interval struct {
	Host       int
	Slot       int
	Token      int64
	Start, End time.Time
	Open       bool // no end logged and not killed: still holding
}

// Intervals returns the host's working intervals. A stopped host's
// current interval ends at its SIGSTOP: a stopped process does no work.
func (h *Host) Intervals() []Interval {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []Interval
	var cur *Interval
	for _, ev := range h.events {
		switch ev.Kind {
		case "start":
			cur = &Interval{Host: h.N, Slot: ev.Slot, Token: ev.Token, Start: ev.At}
		case "end", "lost":
			if cur != nil {
				cur.End = ev.At
				if !h.stopped.IsZero() && h.stopped.After(cur.Start) && h.stopped.Before(cur.End) {
					cur.End = h.stopped
				}
				out = append(out, *cur)
				cur = nil
			}
		}
	}
	if cur != nil {
		switch {
		case !h.stopped.IsZero() && h.stopped.After(cur.Start):
			cur.End = h.stopped // before any later SIGKILL
		case !h.killed.IsZero():
			cur.End = h.killed
		default:
			cur.End, cur.Open = time.Now(), true
		}
		out = append(out, *cur)
	}
	return out
}

// Overlaps checks intervals from all hosts: it returns the largest number
// working at once, and a description of every instant more than max
// worked, or two worked on the same slot.
func Overlaps(ivs []Interval, limit int) (peak int, bad []string) {
	type edge struct {
		t     time.Time
		delta int
		iv    Interval
	}
	var edges []edge
	for _, iv := range ivs {
		edges = append(edges, edge{iv.Start, +1, iv}, edge{iv.End, -1, iv})
	}
	// Ends before starts at the same instant: touching is not overlapping.
	slices.SortStableFunc(edges, func(a, b edge) int {
		if c := a.t.Compare(b.t); c != 0 {
			return c
		}
		return a.delta - b.delta
	})
	n := 0
	holding := map[int]Interval{}
	for _, e := range edges {
		n += e.delta
		if e.delta > 0 {
			if other, ok := holding[e.iv.Slot]; ok {
				bad = append(bad, fmt.Sprintf("slot %d: host %d (token %d) started at %s while host %d (token %d) worked on it",
					e.iv.Slot, e.iv.Host, e.iv.Token, e.t.Format("15:04:05.000000"), other.Host, other.Token))
			}
			holding[e.iv.Slot] = e.iv
		} else if holding[e.iv.Slot].Token == e.iv.Token {
			delete(holding, e.iv.Slot)
		}
		if n > limit {
			bad = append(bad, fmt.Sprintf("%d working at %s (max %d), host %d just started", n, e.t.Format("15:04:05.000000"), limit, e.iv.Host))
		}
		peak = max(peak, n)
	}
	return peak, bad
}
