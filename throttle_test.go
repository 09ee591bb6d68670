package llmslots

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/llmslots/llmslots/internal/filelock"
	"github.com/llmslots/llmslots/internal/slotfile"
	"github.com/llmslots/llmslots/internal/throttle"
)

// TestThrottleNoReportNoFile: a pool that never had a report never gets a
// throttle file, and behaves as before.
func TestThrottleNoReportNoFile(t *testing.T) {
	dir := t.TempDir()
	p, err := NewPool(dir)
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		g, err := p.Acquire(2, 0)
		if err != nil {
			t.Fatal(err)
		}
		g.Release()
	}
	for _, name := range []string{throttle.FileName, throttle.LockName} {
		if _, err := os.Lstat(filepath.Join(dir, name)); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("%s exists without any report (err %v)", name, err)
		}
	}
	st, err := p.ReadStatus(2)
	if err != nil {
		t.Fatal(err)
	}
	if st.Throttle != nil || st.Limit != 2 {
		t.Fatalf("status without reports: limit %d throttle %+v", st.Limit, st.Throttle)
	}
}

// TestThrottledPausesAndLowers: a report pauses every grant until the
// hint has passed, lowers the limit, and un-throttled releases raise it.
func TestThrottledPausesAndLowers(t *testing.T) {
	dir := t.TempDir()
	p, err := NewPool(dir)
	if err != nil {
		t.Fatal(err)
	}
	q, err := NewPool(dir) // another "process" of the pool: a Pool of its own
	if err != nil {
		t.Fatal(err)
	}
	g, err := p.Acquire(4, 0)
	if err != nil {
		t.Fatal(err)
	}
	g.Throttled(300 * time.Millisecond)
	reported := time.Now()
	g.Release()
	if _, err := q.Acquire(4, 0); !errors.Is(err, ErrBusy) {
		t.Fatalf("Acquire(4, 0) during the pause: %v, want ErrBusy", err)
	}
	st, err := q.ReadStatus(4)
	if err != nil {
		t.Fatal(err)
	}
	if st.Throttle == nil || st.Throttle.PausedUntil.IsZero() || st.Limit != 2 || st.Throttle.LastReport == nil ||
		st.Throttle.LastReport.PID != os.Getpid() || st.Throttle.LastReport.Hint != 300*time.Millisecond {
		t.Fatalf("status after a report: limit %d, throttle %+v", st.Limit, st.Throttle)
	}
	h, err := q.Acquire(4, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if waited := time.Since(reported); waited < 290*time.Millisecond {
		t.Fatalf("granted %v after the report, before the 300ms hint passed", waited)
	}
	// Limit 2 (4 * 0.7 = 2.8): a second holder is fine, a third is not.
	h2, err := q.Acquire(4, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := q.Acquire(4, 100*time.Millisecond); !errors.Is(err, ErrBusy) {
		t.Fatalf("a third holder with the limit at 2: %v, want ErrBusy", err)
	}
	// Un-throttled releases raise the limit back to max: one slot per
	// round, but across the level below the one that failed (3) one per
	// throttle.SlowRounds rounds.
	h.Release()
	h2.Release()
	for range 2 + 4*throttle.SlowRounds {
		g, err := q.Acquire(4, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		g.Release()
	}
	st, _ = q.ReadStatus(4)
	if st.Limit != 4 {
		t.Fatalf("limit %d after the un-throttled releases, want 4 (%+v)", st.Limit, st.Throttle)
	}
}

// TestThrottleCorruptState: an unusable state file is an error logged
// once, the pool works as with no reports, and the next report replaces
// the file.
func TestThrottleCorruptState(t *testing.T) {
	for name, content := range map[string]string{
		"garbage":  "\x00\xff garbage\n",
		"foreign":  "{\"limit\": 1}\n",
		"badlimit": "llmslots-throttle 1\nlimit=NaN\npause_until=99999999999999999\n",
		"nolimit":  "llmslots-throttle 1\npause_until=1\n",
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			var log bytes.Buffer
			p, err := NewPool(dir, WithLogger(slog.New(slog.NewTextHandler(&log, nil))))
			if err != nil {
				t.Fatal(err)
			}
			g, err := p.Acquire(1, 0) // makes the directory
			if err != nil {
				t.Fatal(err)
			}
			g.Release()
			if err := os.WriteFile(filepath.Join(dir, throttle.FileName), []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
			// A process that starts now looks at the state it finds.
			log.Reset()
			p, err = NewPool(dir, WithLogger(slog.New(slog.NewTextHandler(&log, nil))))
			if err != nil {
				t.Fatal(err)
			}
			for range 3 {
				g, err := p.Acquire(1, 0)
				if err != nil {
					t.Fatalf("Acquire with a %s state file: %v", name, err)
				}
				g.Release()
			}
			if n := strings.Count(log.String(), "throttle state ignored"); n != 1 {
				t.Fatalf("logged %d times, want once:\n%s", n, log.String())
			}
			st, err := p.ReadStatus(1)
			if err != nil {
				t.Fatal(err)
			}
			if st.Throttle == nil || st.Throttle.Error == "" || st.Limit != 1 {
				t.Fatalf("status: limit %d throttle %+v", st.Limit, st.Throttle)
			}
			g, _ = p.Acquire(1, 0)
			g.Throttled(time.Millisecond)
			g.Release()
			if st, _ := p.ReadStatus(1); st.Throttle == nil || st.Throttle.Error != "" {
				t.Fatalf("the report did not replace the file: %+v", st.Throttle)
			}
		})
	}
}

// TestPauseResume: a pause by hand stops grants; Resume removes the state.
func TestPauseResume(t *testing.T) {
	dir := t.TempDir()
	p, err := NewPool(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Pause(time.Hour, "maintenance"); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Acquire(3, 50*time.Millisecond); !errors.Is(err, ErrBusy) {
		t.Fatalf("Acquire while paused: %v", err)
	}
	st, _ := p.ReadStatus(3)
	if st.Throttle == nil || st.Throttle.LastReport == nil || st.Throttle.LastReport.Reason != "maintenance" || st.Limit != 3 {
		t.Fatalf("status while paused: %+v", st.Throttle)
	}
	done := make(chan error, 1)
	go func() {
		g, err := p.Acquire(3, 5*time.Second)
		if err == nil {
			g.Release()
		}
		done <- err
	}()
	time.Sleep(100 * time.Millisecond)
	if err := p.Resume(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("the waiter after Resume: %v", err)
	}
	if _, err := os.Lstat(filepath.Join(dir, throttle.FileName)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("state file after Resume: %v", err)
	}
	for _, d := range []time.Duration{0, -time.Second, 25 * time.Hour} {
		if err := p.Pause(d, ""); !errors.Is(err, ErrInvalid) {
			t.Fatalf("Pause(%v): %v, want ErrInvalid", d, err)
		}
	}
	if err := p.Pause(time.Second, "a\nb"); !errors.Is(err, ErrInvalid) {
		t.Fatalf("Pause with a newline in the reason: %v", err)
	}
	var nilGuard *Guard
	nilGuard.Throttled(time.Second) // no panic
}

// A report made while another process holds the throttle lock for longer
// than a grant waits for it (a holder descheduled on a busy machine) is
// recorded once the lock is free, not dropped: before, Throttled gave up
// after about 50 ms and the other processes never paused.
func TestReportWaitsOutABusyThrottleLock(t *testing.T) {
	p, err := NewPool(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	g, err := p.Acquire(4, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Release()
	if err := p.prepare(); err != nil {
		t.Fatal(err)
	}
	lock, err := os.OpenFile(filepath.Join(p.Dir(), throttle.LockName), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := filelock.TryLock(lock); !ok || err != nil {
		t.Fatalf("taking the throttle lock: %v %v", ok, err)
	}
	const held = 300 * time.Millisecond
	time.AfterFunc(held, func() { lock.Close() })
	start := time.Now()
	g.Throttled(time.Second)
	if took := time.Since(start); took < held {
		t.Fatalf("Throttled returned after %v, while the lock was still held", took)
	}
	st, err := p.ReadStatus(4)
	if err != nil {
		t.Fatal(err)
	}
	if st.Throttle == nil || st.Throttle.LastReport == nil {
		t.Fatalf("the report was dropped: throttle %+v", st.Throttle)
	}
}

// Release in a throttled pool raises the limit under the throttle lock,
// but does not wait for it longer than a grant would: a process holding
// the lock (stopped, or a group member on purpose) cannot make Release
// block.
func TestReleaseDoesNotWaitForAHeldThrottleLock(t *testing.T) {
	p, err := NewPool(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	g, err := p.Acquire(4, 0)
	if err != nil {
		t.Fatal(err)
	}
	g.Throttled(0)
	g.Release()
	g, err = p.Acquire(4, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	lock, err := os.OpenFile(filepath.Join(p.Dir(), throttle.LockName), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	if ok, err := filelock.TryLock(lock); !ok || err != nil {
		t.Fatalf("taking the throttle lock: %v %v", ok, err)
	}
	start := time.Now()
	g.Release()
	if took := time.Since(start); took > time.Second {
		t.Fatalf("Release took %v while another holder kept the throttle lock", took)
	}
}

// The throttle store's temporary files are newborn files, which cleanup
// removes when a writer killed before its rename leaves one.
func TestThrottleTempIsNewborn(t *testing.T) {
	if !strings.HasPrefix(throttle.TempPrefix, slotfile.NewbornPrefix) {
		t.Fatalf("throttle.TempPrefix %q does not start with %q", throttle.TempPrefix, slotfile.NewbornPrefix)
	}
}

// TestReportLimitUsage: a usage limit pauses every grant until its reset,
// keeps the limit, and the busy error says what the pool waits for; one
// without a reset ahead pauses for the backoff, one days ahead for 24 h at
// most; a rate limit is Throttled.
func TestReportLimitUsage(t *testing.T) {
	dir := t.TempDir()
	p, _ := NewPool(dir)
	q, _ := NewPool(dir) // another "process" of the pool
	g, err := p.Acquire(4, 0)
	if err != nil {
		t.Fatal(err)
	}
	reset := time.Now().Add(700 * time.Millisecond)
	line := "You've hit your usage limit. Upgrade to Pro or try again in 1 second."
	g.ReportLimit(Limit{Kind: UsageLimit, ResetAt: reset, Line: line})
	g.Release()
	st, err := q.ReadStatus(4)
	if err != nil {
		t.Fatal(err)
	}
	if r := st.Throttle.LastReport; st.Limit != 4 || r == nil || r.Kind != "usage" || r.Reason != line || st.Throttle.PausedUntil.Sub(reset).Abs() > 10*time.Millisecond {
		t.Fatalf("status after a usage limit: limit %d, throttle %+v, report %+v", st.Limit, st.Throttle, r)
	}
	_, err = q.Acquire(4, 100*time.Millisecond)
	if !errors.Is(err, ErrBusy) || !strings.Contains(err.Error(), "for a usage limit to reset") || !strings.Contains(err.Error(), line) {
		t.Fatalf("Acquire during the pause: %v", err)
	}
	h, err := q.Acquire(4, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if early := time.Until(reset); early > 0 {
		t.Fatalf("granted %v before the reset", early)
	}
	for _, c := range []struct {
		l         Limit
		min, max  time.Duration
		kind      string
		limitDrop bool
	}{
		{Limit{Kind: UsageLimit}, 500 * time.Millisecond, time.Second, "usage", false},                                                 // no reset: the backoff
		{Limit{Kind: UsageLimit, ResetAt: time.Now().Add(-time.Hour)}, 0, 2 * time.Second, "usage", false},                             // past
		{Limit{Kind: UsageLimit, ResetAt: time.Now().Add(96 * time.Hour)}, 24*time.Hour - time.Minute, 24 * time.Hour, "usage", false}, // cut
		{Limit{Kind: RateLimited, RetryAfter: 3 * time.Second}, 3*time.Second - 50*time.Millisecond, 3 * time.Second, "throttled", true},
	} {
		if err := q.Resume(); err != nil {
			t.Fatal(err)
		}
		c.l.Line = "a line"
		h.ReportLimit(c.l)
		st, _ := q.ReadStatus(4)
		left := time.Until(st.Throttle.PausedUntil)
		if st.Throttle.LastReport.Kind != c.kind || left < c.min || left > c.max || (st.Limit < 4) != c.limitDrop {
			t.Errorf("ReportLimit(%+v): kind %q, paused %v, limit %d", c.l, st.Throttle.LastReport.Kind, left, st.Limit)
		}
	}
	h.Release()
	var nilGuard *Guard
	nilGuard.ReportLimit(Limit{Kind: UsageLimit}) // does nothing
}
