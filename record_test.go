package llmslots

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/llmslots/llmslots/internal/slotfile"
)

func TestRecordRoundTrip(t *testing.T) {
	in := slotfile.Record{PID: 4242, Host: "build-7", Since: time.Date(2026, 11, 26, 11, 28, 40, 123456789, time.UTC),
		Start: "1234567", PidNS: "4026531836", Command: "/usr/bin/agent --task review", Label: "codex review"}
	data := in.Marshal()
	if !strings.HasPrefix(string(data), "pid=4242\n") || strings.Count(string(data), "\n") != 7 {
		t.Fatalf("marshal: %q", data)
	}
	if out := slotfile.ParseRecord(data); out != in {
		t.Fatalf("round trip: %+v != %+v", out, in)
	}
}

// Readers meet partial, empty and garbage files: they get what can be
// read and never an error or a panic.
func TestParseRecordToleratesGarbage(t *testing.T) {
	cases := []struct {
		in      string
		wantPID int
	}{
		{"", 0},
		{"pid=", 0},
		{"pid=12", 12}, // cut short before the newline
		{"pid=12\nhost=", 12},
		{"pid=-5\n", 0},
		{"pid=0\n", 0},
		{"pid=99999999999999999999999\n", 0},
		{"pid=abc\n", 0},
		{"\x00\x01\x02\xff\xfe", 0},
		{"host=x\npid= 77 \n", 77},
		{"==\n=\npid=3=4\n", 0},
		{"since=yesterday\npid=8\n", 8},
		{strings.Repeat("x", 10000), 0},
	}
	for _, c := range cases {
		if got := slotfile.ParseRecord([]byte(c.in)); got.PID != c.wantPID {
			t.Errorf("slotfile.ParseRecord(%q).PID = %d; want %d", c.in, got.PID, c.wantPID)
		}
	}
}

func TestCleanValue(t *testing.T) {
	cases := []struct {
		in   string
		max  int
		want string
	}{
		{"plain", 10, "plain"},
		{"a\nb\rc\td", 10, "a b c d"},
		{"  padded  ", 20, "padded"},
		{"\xffbad", 10, "?bad"},
		{"héllo", 2, "h"}, // never cuts a rune in half
		{"abcdef", 3, "abc"},
		// Bidirectional controls reorder what status shows.
		{"codex \u202ereview\u202c #42", 40, "codex  review  #42"},
		{"\u2066a\u2069\u200e\u200f\u061cb\u202a\u202b\u202d\u2067\u2068", 40, "a    b"},
	}
	for _, c := range cases {
		if got := slotfile.CleanValue(c.in, c.max); got != c.want {
			t.Errorf("slotfile.CleanValue(%q, %d) = %q; want %q", c.in, c.max, got, c.want)
		}
	}
}

func TestParseSlotName(t *testing.T) {
	cases := map[string]int{
		"slot-0.lock": 0, "slot-17.lock": 17, "slot-1023.lock": 1023,
		"slot-1024.lock": -1, "slot-01.lock": -1, "slot--1.lock": -1, "slot-.lock": -1,
		"slot-1.lock.tmp": -1, "codex": -1, "slot-+1.lock": -1,
	}
	for name, want := range cases {
		if got := slotfile.ParseSlotName(name); got != want {
			t.Errorf("slotfile.ParseSlotName(%q) = %d; want %d", name, got, want)
		}
	}
}

// A label is refused for a bidirectional control as for any other
// control character; the marks around them and other format characters
// are text.
func TestCheckLabelRefusesBidiControls(t *testing.T) {
	for _, r := range []rune{0x061c, 0x200e, 0x200f, 0x202a, 0x202b, 0x202c, 0x202d, 0x202e, 0x2066, 0x2067, 0x2068, 0x2069} {
		label := "job " + string(r) + "24"
		err := checkLabel(label)
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "control characters") {
			t.Errorf("checkLabel(%q) = %v; want it refused", label, err)
		}
		if _, err := NewPool(t.TempDir(), WithLabel(label)); !errors.Is(err, ErrInvalid) {
			t.Errorf("WithLabel(%q): %v; want ErrInvalid", label, err)
		}
	}
	for _, label := range []string{"codex review", "λ étiquette", "日本語", "a\u200db", "x\u2065y", "x\u202fy", "\u061bsemicolon"} {
		if err := checkLabel(label); err != nil {
			t.Errorf("checkLabel(%q) = %v; want it accepted", label, err)
		}
	}
}
