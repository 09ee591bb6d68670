package main

import (
	"strings"
	"testing"
	"time"

	"github.com/llmslots/llmslots"
)

// width is how many columns s takes, counted independently of columns:
// CJK ideographs and Hangul take two, the combining acute accent none.
func width(s string) int {
	n := 0
	for _, r := range s {
		switch {
		case r >= 0x4e00 && r <= 0x9fff, r >= 0xac00 && r <= 0xd7a3:
			n += 2
		case r == 0x301:
		default:
			n++
		}
	}
	return n
}

// The live line is cut to the terminal's columns, not to its runes: a
// directory named in wide characters must not wrap either.
func TestCutCountsColumns(t *testing.T) {
	for _, s := range []string{
		strings.Repeat("a", 200),
		"/home/" + strings.Repeat("张三", 40) + "/.cache/llmslots",
		"/home/" + strings.Repeat("한국", 40),
		strings.Repeat("e\u0301", 70), // é as e and a combining accent: 70 columns
		"short",
	} {
		for _, cols := range []int{2, 3, 10, 59, 60, 61, 80} {
			got := cut(s, cols)
			if w := width(got); w >= cols {
				t.Errorf("cut(%q, %d) = %q, %d columns: it would wrap", s, cols, got, w)
			}
			if width(s) < cols && got != s {
				t.Errorf("cut(%q, %d) = %q; it fits, want it whole", s, cols, got)
			}
			if got != s && (!strings.HasSuffix(got, "…") || !strings.HasPrefix(s, strings.TrimSuffix(got, "…"))) {
				t.Errorf("cut(%q, %d) = %q: not a marked prefix", s, cols, got)
			}
		}
	}
	if got := cut("whole", 0); got != "whole" {
		t.Errorf("width unknown: cut gave %q", got)
	}
}

// The line names the pool's directory, which the command did not choose:
// whatever control characters its name holds never reach the terminal.
func TestWaitingLineHasNoControls(t *testing.T) {
	p := llmslots.Progress{Dir: "/tmp/x\n\x1b[2J\u202eevil\xff", Max: 2, Ahead: 1,
		Holders: []llmslots.Holder{{PID: 42}}, Waited: 1500 * time.Millisecond}
	l := waitingLine(p, 30*time.Second)
	if strings.ContainsFunc(l, func(r rune) bool { return r < 0x20 || r == 0x7f || r == 0x202e || r == 0xfffd }) {
		t.Errorf("waiting line %q holds control characters", l)
	}
	for _, want := range []string{"2J", "evil", "1/2 busy", "(pids 42)", "1 waiting ahead", "waited 1.5s", "gives up after 30s"} {
		if !strings.Contains(l, want) {
			t.Errorf("waiting line %q does not say %q", l, want)
		}
	}
}
