package throttle

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

// full is a state with every field set, and its file: the on-disk format,
// which existing pools' files are in, must not change.
var (
	full = State{
		Limit: 2.8, WMax: 4, Ceiling: 6, Decreased: time.Unix(0, 1_700_000_000_000_000_001),
		Raised:     time.Unix(0, 1_700_000_000_200_000_000),
		PauseUntil: time.Unix(0, 1_700_000_000_300_000_000), Spacing: 30 * time.Millisecond,
		LastGrant: time.Unix(0, 1_700_000_000_310_000_000), Backoff: 2,
		Last: Record{At: time.Unix(0, 1_700_000_000_000_000_001), PID: 4242, Host: "build-7",
			Hint: 300 * time.Millisecond, Kind: "throttled", Command: "codex exec x", Label: "review"},
	}
	fullFile = `llmslots-throttle 1
limit=2.8000
wmax=4
ceiling=6
decreased=1700000000000000001
raised=1700000000200000000
pause_until=1700000000300000000
spacing=30ms
last_grant=1700000000310000000
backoff=2
report_at=1700000000000000001
report_pid=4242
report_host=build-7
report_hint=300ms
report_kind=throttled
report_reason=
report_command=codex exec x
report_label=review
`
)

func TestMarshalFormat(t *testing.T) {
	if got := string(Marshal(full)); got != fullFile {
		t.Fatalf("Marshal:\n%s\nwant:\n%s", got, fullFile)
	}
	noReport := full
	noReport.Last = Record{}
	if got := string(Marshal(noReport)); strings.Contains(got, "report_") {
		t.Fatalf("a state without a report wrote report lines:\n%s", got)
	}
}

func TestParseRoundTrip(t *testing.T) {
	st, err := Parse([]byte(fullFile))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(st, full) {
		t.Fatalf("Parse:\n got %+v\nwant %+v", st, full)
	}
}

// Free text cannot add a line, nor a key: what a report records of its
// command or label stays in its field.
func TestMarshalOneLine(t *testing.T) {
	st := State{Limit: 1, Last: Record{At: time.Unix(1, 0), Kind: "pause",
		Reason: "a\nlimit=1024\u202e", Command: strings.Repeat("é", 200)}}
	got, err := Parse(Marshal(st))
	if err != nil {
		t.Fatal(err)
	}
	if got.Limit != 1 || got.Last.Reason != "a limit=1024" {
		t.Fatalf("a reason with a newline became %+v", got)
	}
	if len(got.Last.Command) != maxField || got.Last.Command != strings.Repeat("é", maxField/2) {
		t.Fatalf("a long command was cut to %d bytes, %q", len(got.Last.Command), got.Last.Command)
	}
}

func TestParse(t *testing.T) {
	const head = Magic + "\nlimit=3\n"
	for _, c := range []struct {
		name, data string
		err        string // "" : accepted
	}{
		{"the least file", head, ""},
		{"unknown keys of a later version are skipped", head + "future=x\nfuture_too=\n", ""},
		{"empty lines are skipped", head + "\n\nwmax=2\n\n", ""},
		{"no newline at the end", Magic + "\nlimit=3", ""},
		{"empty", "", "does not start with"},
		{"another format", "{\"limit\": 1}\n", "does not start with"},
		{"another version", "llmslots-throttle 2\nlimit=3\n", "does not start with"},
		{"too large", head + strings.Repeat("x=y\n", 1024), "larger than"},
		{"a line without =", head + "garbage\n", "not key=value"},
		{"no limit", Magic + "\nwmax=2\n", "no limit= line"},
		{"limit NaN", Magic + "\nlimit=NaN\n", "out of range"},
		{"limit below 1", Magic + "\nlimit=0.5\n", "out of range"},
		{"limit above MaxLimit", Magic + "\nlimit=1025\n", "out of range"},
		{"limit not a number", Magic + "\nlimit=three\n", "bad limit"},
		{"spacing beyond its bound", head + "spacing=1s\n", "bad spacing"},
		{"negative spacing", head + "spacing=-1ms\n", "bad spacing"},
		{"backoff beyond its bound", head + "backoff=65\n", "bad backoff"},
		{"a time not a number", head + "pause_until=soon\n", "bad pause_until"},
		{"a pid not a number", head + "report_pid=x\n", "bad report_pid"},
	} {
		_, err := Parse([]byte(c.data))
		switch {
		case c.err == "" && err != nil:
			t.Errorf("%s: refused: %v", c.name, err)
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("%s: error %v, want one saying %q", c.name, err, c.err)
		}
	}
}

// A time written as 0 (or below) is "never", not 1970.
func TestParseZeroTimes(t *testing.T) {
	st, err := Parse([]byte(Magic + "\nlimit=3\ndecreased=0\npause_until=-5\n"))
	if err != nil {
		t.Fatal(err)
	}
	if !st.Decreased.IsZero() || !st.PauseUntil.IsZero() {
		t.Fatalf("zero times parsed as %v, %v", st.Decreased, st.PauseUntil)
	}
}
