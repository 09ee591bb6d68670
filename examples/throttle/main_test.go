package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/llmslots/llmslots"
)

// The program as its package doc runs it without a command, on a private
// pool: the stand-in's 429 with "try again in 1s" is reported with that
// hint, and the retry is granted only once the pause has passed.
func TestRetriesAfterThePause(t *testing.T) {
	dir := t.TempDir()
	pool, err := llmslots.NewPool(filepath.Join(dir, "pool"))
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("STANDIN_MARK", filepath.Join(dir, "standin-ran"))
	t.Setenv("STANDIN_HINT", "1s")
	out, errOut := tempFile(t, dir, "out"), tempFile(t, dir, "err")
	start := time.Now()
	if err := run(pool, 3, []string{"sh", "-c", standIn}, out, errOut, 3); err != nil {
		t.Fatalf("run: %v", err)
	}
	took := time.Since(start)
	stdout, _ := os.ReadFile(out.Name())
	stderr, _ := os.ReadFile(errOut.Name())
	t.Logf("stdout:\n%s\nstderr:\n%s", stdout, stderr)
	for _, want := range []string{"429 Too Many Requests", "throttled (retry after 1s)", "try 2 holds slot 0"} {
		if !strings.Contains(string(stderr), want) {
			t.Errorf("stderr lacks %q", want)
		}
	}
	if string(stdout) != "review: looks good\n" {
		t.Errorf("stdout = %q, want the stand-in's review", stdout)
	}
	if took < 900*time.Millisecond {
		t.Errorf("the retry came %v after the start: it did not wait out the 1 s pause", took)
	}
	st, err := pool.ReadStatus(3)
	if err != nil {
		t.Fatal(err)
	}
	if st.Throttle == nil || st.Throttle.LastReport == nil || st.Throttle.LastReport.Hint != time.Second {
		t.Errorf("the pool's throttle state is %+v, want a report with the 1 s hint", st.Throttle)
	}
}

func tempFile(t *testing.T, dir, name string) *os.File {
	t.Helper()
	f, err := os.Create(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func TestRetryHint(t *testing.T) {
	for line, want := range map[string]time.Duration{
		"rate limit reached, please try again in 20s": 20 * time.Second,
		"429: retry after 3 seconds":                  3 * time.Second,
		"usage limit reached, try again in 5 minutes": 5 * time.Minute,
		"Too Many Requests; try again in 250ms":       250 * time.Millisecond,
		"usage limit reached, try again in 1 hour":    time.Hour,
		"usage limit reached, try again at 3:05 PM":   0,
		"429 Too Many Requests":                       0,
	} {
		if got := retryHint(line); got != want {
			t.Errorf("retryHint(%q) = %v, want %v", line, got, want)
		}
	}
}

// The last try's 429 is reported too, and the error says it gave up.
func TestGivesUpAfterTheLastTry(t *testing.T) {
	dir := t.TempDir()
	pool, err := llmslots.NewPool(filepath.Join(dir, "pool"))
	if err != nil {
		t.Fatal(err)
	}
	out, errOut := tempFile(t, dir, "out"), tempFile(t, dir, "err")
	always := []string{"sh", "-c", `echo "429 Too Many Requests" >&2; exit 1`}
	err = run(pool, 3, always, out, errOut, 1)
	if err == nil || !strings.Contains(err.Error(), "throttled 1 times") {
		t.Errorf("run = %v, want it to give up after 1 try", err)
	}
	st, err := pool.ReadStatus(3)
	if err != nil {
		t.Fatal(err)
	}
	if st.Throttle == nil || st.Throttle.LastReport == nil {
		t.Errorf("no report recorded: %+v", st.Throttle)
	}
}
