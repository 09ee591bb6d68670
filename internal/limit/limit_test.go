package limit

import (
	"bytes"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// sample is one corpus file; testdata/README.md defines the format.
type sample struct {
	sources    []string
	now        time.Time
	zone       *time.Location
	kind       Kind
	retry      time.Duration
	reset      time.Time
	body       []byte
	hasNow, ok bool
}

func readSample(t *testing.T, path string) sample {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	head, body, found := strings.Cut(string(data), "\n---\n")
	if !found {
		t.Fatalf("%s: no --- line", path)
	}
	s := sample{body: []byte(body)}
	for _, line := range strings.Split(head, "\n") {
		key, value, _ := strings.Cut(line, ": ")
		switch key {
		case "source":
			s.sources = append(s.sources, value)
		case "note":
		case "now":
			s.now, err = time.Parse(time.RFC3339, value)
			s.hasNow = true
		case "zone":
			s.zone, err = time.LoadLocation(value)
		case "want":
			err = s.parseWant(value)
			s.ok = true
		default:
			t.Fatalf("%s: unknown header line %q", path, line)
		}
		if err != nil {
			t.Fatalf("%s: %q: %v", path, line, err)
		}
	}
	if len(s.sources) == 0 || !s.hasNow || s.zone == nil || !s.ok {
		t.Fatalf("%s: needs source, now, zone and want", path)
	}
	return s
}

func (s *sample) parseWant(v string) (err error) {
	kind, arg, _ := strings.Cut(v, " ")
	switch {
	case kind == "none" && arg == "":
	case kind == "rate" && arg == "":
		s.kind = RateLimited
	case kind == "rate" && strings.HasPrefix(arg, "retry="):
		s.kind = RateLimited
		s.retry, err = time.ParseDuration(strings.TrimPrefix(arg, "retry="))
	case kind == "usage" && arg == "":
		s.kind = UsageLimit
	case kind == "usage" && strings.HasPrefix(arg, "reset="):
		s.kind = UsageLimit
		s.reset, err = time.Parse(time.RFC3339, strings.TrimPrefix(arg, "reset="))
	default:
		err = fmt.Errorf("bad want")
	}
	return err
}

func TestCorpus(t *testing.T) {
	paths, err := filepath.Glob("testdata/*.txt")
	if err != nil {
		t.Fatal(err)
	}
	positive, negative := 0, 0
	for _, path := range paths {
		s := readSample(t, path)
		if s.kind == 0 {
			negative++
		} else {
			positive++
		}
		t.Run(filepath.Base(path), func(t *testing.T) {
			f, ok := Detect(s.body, s.now, s.zone)
			if ok != (s.kind != 0) || f.Kind != s.kind {
				t.Fatalf("got %v %+v, want kind %d (%s)", ok, f, s.kind, s.sources[0])
			}
			if f.RetryAfter != s.retry || !f.ResetAt.Equal(s.reset) {
				t.Errorf("got retry %v reset %v, want retry %v reset %v (%s)",
					f.RetryAfter, f.ResetAt.UTC(), s.retry, s.reset, s.sources[0])
			}
			if ok && (f.Line == "" || !bytes.Contains(ansiRe.ReplaceAll(s.body, nil), []byte(f.Line[:min(len(f.Line), 20)]))) {
				t.Errorf("Line %q is not from the output", f.Line)
			}
		})
	}
	if positive < 30 || negative < 8 {
		t.Errorf("corpus has %d positive and %d negative samples, want 30+ and 8+", positive, negative)
	}
}

var now = time.Date(2025, 8, 18, 10, 0, 0, 0, time.UTC)

// TestRelative covers the relative times of the formats, the absurd ones included.
func TestRelative(t *testing.T) {
	for _, c := range []struct {
		in   string
		want time.Duration
	}{
		{"Rate limit reached for gpt-4o in organization org-x on requests per min (RPM): Limit 3, Used 3, Requested 1. Please try again in 7 seconds.", 7 * time.Second},
		{"Rate limit reached for gpt-4o in organization org-x on requests per min (RPM): Limit 3, Used 3, Requested 1. Please try again in 2m30s.", 150 * time.Second},
		{"Rate limit reached for gpt-4o in organization org-x on requests per min (RPM): Limit 3, Used 3, Requested 1. Please try again in 1m30s. Visit", 90 * time.Second},
		{"Rate limit reached for gpt-4o in organization org-x on requests per min (RPM): Limit 3, Used 3, Requested 1. Please try again in 6ms.", 6 * time.Millisecond},
		{"Rate limit reached for gpt-4o in organization org-x on requests per min (RPM): Limit 3, Used 3, Requested 1. Please try again in 1.5s.", 1500 * time.Millisecond},
		{"Rate limit reached for gpt-4o in organization org-x on requests per min (RPM): Limit 3, Used 3, Requested 1. Please try again in 2h13m12.5s.", 2*time.Hour + 13*time.Minute + 12500*time.Millisecond},
		{"Rate limit reached for gpt-4o in organization org-x on requests per min (RPM): Limit 3, Used 3, Requested 1. Please try again in 99999999999 days.", 0},
		{"Rate limit reached for gpt-4o in organization org-x on requests per min (RPM): Limit 3, Used 3, Requested 1. Please try again in 999999999999999.999999999 h.", 0},
		{"Rate limit reached for gpt-4o in organization org-x on requests per min (RPM): Limit 3, Used 3, Requested 1. Please try again in 5 attempts.", 0},
		{"Rate limit reached for gpt-4o in organization org-x on requests per min (RPM): Limit 3, Used 3, Requested 1. Please try again later.", 0},
	} {
		f, ok := Detect([]byte(c.in), now, time.UTC)
		if !ok || f.Kind != RateLimited || f.RetryAfter != c.want {
			t.Errorf("%q: got %v %+v, want RetryAfter %v", c.in, ok, f, c.want)
		}
	}
}

// TestResets covers resets that are absurd, past or odd: reported as unknown, never a panic.
func TestResets(t *testing.T) {
	la, _ := time.LoadLocation("America/Los_Angeles")
	for _, c := range []struct {
		in   string
		want time.Time
	}{
		{"You've hit your usage limit. Try again in 4 days 6 hours 37 minutes.", now.Add(102*time.Hour + 37*time.Minute)},
		{"You've hit your usage limit. Try again in 99999999999 days.", time.Time{}},
		{"Claude AI usage limit reached|999999999999", time.Time{}},
		{"Claude AI usage limit reached|1", time.Time{}},
		{"Claude AI usage limit reached|0", time.Time{}},
		{`ERROR: {"error":{"type":"usage_limit_reached","resets_at":1e300}}`, time.Time{}},
		{`ERROR: {"error":{"type":"usage_limit_reached","resets_at":-1e300,"resets_in_seconds":-5}}`, time.Time{}},
		{`ERROR: {"error":{"type":"usage_limit_reached","resets_in_seconds":1e300}}`, time.Time{}},
		{`ERROR: {"error":{"type":"usage_limit_reached","resets_at":"soon"}}`, time.Time{}},
		{"You've hit your limit · resets 3pm", time.Date(2025, 8, 18, 15, 0, 0, 0, la)},
		{"You've hit your limit · resets 2am", time.Date(2025, 8, 19, 2, 0, 0, 0, la)},
		{"You've hit your limit · resets 3pm (No/Such_Zone)", time.Date(2025, 8, 18, 15, 0, 0, 0, la)},
		{"You've hit your limit · resets 99:99pm", time.Time{}},
		{"You've hit your limit · resets Feb 31, 3pm", time.Time{}}, // time.Date makes it Mar 3: past
		{"You've hit your limit · resets Aug 1 at 7am", time.Time{}},
		{"You've hit your limit · resets Jan 2 at 7am", time.Time{}},
		{"You've hit your usage limit. Try again at Dec 31st, 9999 11:59 PM.", time.Time{}},
		{"You've hit your limit · resets 5", time.Time{}},
	} {
		f, ok := Detect([]byte(c.in), now, la)
		if !ok || f.Kind != UsageLimit || !f.ResetAt.Equal(c.want) {
			t.Errorf("%q: got %v %+v, want ResetAt %v", c.in, ok, f, c.want)
		}
	}
	// A date without a year, read around New Year, is in the next year.
	jan2 := time.Date(2026, 1, 2, 7, 0, 0, 0, la)
	if f, _ := Detect([]byte("You've hit your weekly limit · resets Jan 2 at 7am"), time.Date(2025, 12, 30, 12, 0, 0, 0, la), la); !f.ResetAt.Equal(jan2) {
		t.Errorf("Jan 2 read on Dec 30: got %v, want %v", f.ResetAt, jan2)
	}
}

// TestBadInput feeds huge, binary and invalid UTF-8 output.
func TestBadInput(t *testing.T) {
	junk := make([]byte, 8<<20)
	rand.New(rand.NewSource(1)).Read(junk)
	msg := []byte("\nERROR: exceeded retry limit, last status: 429 Too Many Requests\n")
	start := time.Now()
	if _, ok := Detect(append(append([]byte{}, junk...), msg...), now, time.UTC); !ok {
		t.Error("a message after 8 MiB of junk was missed")
	}
	if _, ok := Detect(append(append([]byte{}, msg...), junk...), now, time.UTC); ok {
		t.Error("a message 8 MiB before the end was read: only the tail should be")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("two 8 MiB outputs took %v", d)
	}
	long := bytes.Repeat([]byte("é"), 1000)
	f, ok := Detect(append([]byte("Credit balance is too low \xff\xfe"), long...), now, time.UTC)
	if !ok || len(f.Line) > 310 || !strings.HasPrefix(f.Line, "Credit balance is too low \uFFFD") || !utf8Valid(f.Line) {
		t.Errorf("got %v, Line %q", ok, f.Line)
	}
	if _, ok := Detect([]byte(strings.Repeat("{", 1<<20)), now, time.UTC); ok {
		t.Error("braces read as a signal")
	}
	if _, ok := Detect(nil, now, time.UTC); ok {
		t.Error("empty output read as a signal")
	}
}

func utf8Valid(s string) bool { return strings.ToValidUTF8(s, "") == s }

// TestFences: a closed ``` block is quoted material; an unclosed one, cut off by the end or
// the window, is not dropped.
func TestFences(t *testing.T) {
	msg := "You've hit your limit · resets 3pm (Europe/Berlin)\n"
	if _, ok := Detect([]byte("```\n"+msg+"```\n"), now, time.UTC); ok {
		t.Error("a closed block counted")
	}
	if _, ok := Detect([]byte("text\n```go\ncode\n"+msg), now, time.UTC); !ok {
		t.Error("an unclosed block hid the message")
	}
	if f, _ := Detect([]byte("API Error: Rate limit reached\n```\n"+msg+"```\n"), now, time.UTC); f.Kind != RateLimited {
		t.Errorf("a closed block changed what came before it: %+v", f)
	}
}

// TestZoneWithoutZoneinfo runs Detect in a child process that has no zoneinfo to read:
// ZONEINFO names an empty directory and TZ a zone that does not exist, and on Linux, where
// a mount namespace can be had, the system's zoneinfo and GOROOT's are hidden under empty
// directories. A parenthesised zone must still resolve, from the embedded time/tzdata.
func TestZoneWithoutZoneinfo(t *testing.T) {
	tokyo := "You've hit your limit · resets 4am (Asia/Tokyo)\n"
	if os.Getenv("LIMIT_TEST_CHILD") == "1" {
		_, sys := os.Stat("/usr/share/zoneinfo/Asia/Tokyo")
		_, goroot := os.Stat(filepath.Join(os.Getenv("GOROOT_TIME"), "zoneinfo.zip"))
		fmt.Printf("hidden=%v\n", sys != nil && goroot != nil)
		f, ok := Detect([]byte(tokyo), now, time.UTC)
		if want := time.Date(2025, 8, 18, 19, 0, 0, 0, time.UTC); !ok || !f.ResetAt.Equal(want) {
			t.Fatalf("got %v %+v, want ResetAt %v", ok, f, want)
		}
		return
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	empty := t.TempDir()
	env := []string{"LIMIT_TEST_CHILD=1", "ZONEINFO=" + empty, "TZ=Nowhere/Odd"}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "TZ=") && !strings.HasPrefix(kv, "ZONEINFO=") {
			env = append(env, kv)
		}
	}
	args := []string{"-test.run=^TestZoneWithoutZoneinfo$", "-test.v"}
	// GOROOT's lib/time/zoneinfo.zip is the runtime's last resort, after the embedded data.
	goroot, err := exec.Command("go", "env", "GOROOT").Output()
	if err != nil {
		t.Fatalf("go env GOROOT: %v", err)
	}
	goTime := filepath.Join(strings.TrimSpace(string(goroot)), "lib", "time")
	hide := `for d in /usr/share/zoneinfo /usr/share/lib/zoneinfo /usr/lib/locale/TZ /etc/zoneinfo "$GOROOT_TIME"; do
		if [ -d "$d" ]; then mount --bind "$ZONEINFO" "$d" || exit 97; fi; done; exec "$@"`
	run := func(name string, arg ...string) (string, error) {
		cmd := exec.Command(name, arg...)
		cmd.Env = append(env, "GOROOT_TIME="+goTime)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	// Can this host hide directories in a mount namespace? If not, the child still runs,
	// with ZONEINFO and TZ changed only.
	out, err := "", fmt.Errorf("not linux")
	if runtime.GOOS == "linux" {
		out, err = run("unshare", "-rm", "sh", "-c", hide, "sh", "true")
	}
	if err == nil {
		out, err = run("unshare", append([]string{"-rm", "sh", "-c", hide, "sh", exe}, args...)...)
		if !strings.Contains(out, "hidden=true") {
			t.Fatalf("the mount namespace did not hide zoneinfo (%v):\n%s", err, out)
		}
	} else {
		t.Logf("no mount namespace (%v %s): system zoneinfo may be read", err, out)
		out, err = run(exe, args...)
	}
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	t.Logf("child:\n%s", out)
}

// FuzzDetect: Detect never panics, and a Found always has a Line.
func FuzzDetect(f *testing.F) {
	paths, _ := filepath.Glob("testdata/*.txt")
	for _, path := range paths {
		if data, err := os.ReadFile(path); err == nil {
			_, body, _ := strings.Cut(string(data), "\n---\n")
			f.Add([]byte(body), int64(1755511200))
		}
	}
	f.Add([]byte("Claude AI usage limit reached|99999999999999999999"), int64(-1<<62))
	f.Add([]byte(`API Error: 429 {"error":{"type":"usage_limit_reached","resets_at":1e308,"resets_in_seconds":1e308}}`), int64(1<<62))
	zone, _ := time.LoadLocation("Asia/Kathmandu")
	f.Fuzz(func(t *testing.T, output []byte, sec int64) {
		found, ok := Detect(output, time.Unix(sec, 0), zone)
		if ok != (found.Kind != 0) || ok && found.Line == "" {
			t.Fatalf("got %v %+v", ok, found)
		}
	})
}

// TestNilZone: a nil loc is read as time.Local, not a panic.
func TestNilZone(t *testing.T) {
	if f, ok := Detect([]byte("You've hit your limit · resets 3pm\n"), now, nil); !ok || f.ResetAt.IsZero() {
		t.Errorf("got %v %+v", ok, f)
	}
}

// TestLongerUnitsAndTighterWordings: "in 1 month" is no minute, "in 2
// weeks" is read; and lines that only borrow a message's first words (a
// review's prose, a log) are no signal.
func TestLongerUnitsAndTighterWordings(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		line string
		want time.Time
	}{
		{"You've hit your usage limit. Try again in 1 month.", now.Add(30 * 24 * time.Hour)},
		{"You've hit your usage limit. Try again in 2 weeks.", now.Add(14 * 24 * time.Hour)},
	} {
		if f, ok := Detect([]byte(c.line), now, time.UTC); !ok || !f.ResetAt.Equal(c.want) {
			t.Errorf("%q: %v %+v, want a reset at %v", c.line, ok, f, c.want)
		}
	}
	for _, line := range []string{
		"Rate limit reached for the login endpoint after five failed attempts.",
		"Credit balance too low is shown when the account is empty.",
		"API Error: 429 from upstream, retried",
		"unexpected status 429 in handler test",
	} {
		if f, ok := Detect([]byte(line), now, time.UTC); ok {
			t.Errorf("%q: detected %+v", line, f)
		}
	}
}

// BenchmarkOrdinaryLines is what run --detect spends on output that says
// nothing of limits, a line at a time, as run reads it.
//
//	go test -run X -bench Ordinary ./internal/limit
func BenchmarkOrdinaryLines(b *testing.B) {
	var lines [][]byte
	size := 0
	for i := range 10000 {
		lines = append(lines, fmt.Appendf(nil, "%d: some ordinary output line of a build log, file_%d.go:12: ok", i, i))
		size += len(lines[i]) + 1
	}
	now := time.Now()
	b.SetBytes(int64(size))
	for b.Loop() {
		for _, l := range lines {
			Detect(l, now, time.UTC)
		}
	}
}

// TestWeekdayReset: "resets Fri 9am (Asia/Tokyo)" is the next Friday's
// 9 am there; today's, if that is still ahead.
func TestWeekdayReset(t *testing.T) {
	tokyo, _ := time.LoadLocation("Asia/Tokyo")
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, tokyo) // a Monday
	for _, c := range []struct {
		line string
		want time.Time
	}{
		{"Weekly limit reached ∙ resets Fri 9am (Asia/Tokyo)", time.Date(2026, 12, 11, 9, 0, 0, 0, tokyo)},
		{"Weekly limit reached ∙ resets Monday 1pm (Asia/Tokyo)", time.Date(2026, 12, 7, 13, 0, 0, 0, tokyo)},
		{"Weekly limit reached ∙ resets Mon 11am (Asia/Tokyo)", time.Date(2026, 12, 14, 11, 0, 0, 0, tokyo)},
	} {
		if f, ok := Detect([]byte(c.line), now, time.UTC); !ok || !f.ResetAt.Equal(c.want) {
			t.Errorf("%q: %v, reset %v; want %v", c.line, ok, f.ResetAt, c.want)
		}
	}
}

// TestMillisecondEpoch: a reset epoch in milliseconds is read as such.
func TestMillisecondEpoch(t *testing.T) {
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	at := now.Add(3 * time.Hour)
	line := fmt.Sprintf("Claude AI usage limit reached|%d", at.UnixMilli())
	if f, ok := Detect([]byte(line), now, time.UTC); !ok || !f.ResetAt.Equal(at) {
		t.Errorf("%q: %v, reset %v; want %v", line, ok, f.ResetAt, at)
	}
}
