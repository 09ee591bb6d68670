package main

import (
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/llmslots/llmslots/internal/textsafe"
)

// isControl: see textsafe.IsControl.
func isControl(r rune) bool { return textsafe.IsControl(r) }

// checkText returns why s, a name or path that reaches a file or a
// script, is refused, or "" when it is fine: s must be UTF-8 without
// control characters. strconv.Quote shows the offender escaped.
func checkText(what, s string) string {
	if !utf8.ValidString(s) || strings.ContainsFunc(s, isControl) {
		return what + " must be UTF-8 text without control characters, got " + strconv.Quote(s)
	}
	return ""
}

// printable replaces what isControl reports, and invalid UTF-8, by "?",
// for text the command draws on the terminal but did not choose (a
// directory's name).
func printable(s string) string {
	s = strings.ToValidUTF8(s, "?")
	return strings.Map(func(r rune) rune {
		if isControl(r) {
			return '?'
		}
		return r
	}, s)
}

// columns is how many terminal columns r takes, near enough for cutting a
// line: 0 for combining and zero-width characters, 2 for East Asian wide
// and full-width ones and emoji, else 1.
func columns(r rune) int {
	switch {
	case unicode.In(r, unicode.Mn, unicode.Me), r >= 0x200b && r <= 0x200d, r == 0x2060, r == 0xfeff:
		return 0
	case r >= 0x1100 && r <= 0x115f, r >= 0x2e80 && r <= 0x303e, r >= 0x3041 && r <= 0x33ff,
		r >= 0x3400 && r <= 0x4dbf, r >= 0x4e00 && r <= 0x9fff, r >= 0xa000 && r <= 0xa4cf,
		r >= 0xac00 && r <= 0xd7a3, r >= 0xf900 && r <= 0xfaff, r >= 0xfe30 && r <= 0xfe4f,
		r >= 0xff00 && r <= 0xff60, r >= 0xffe0 && r <= 0xffe6, r >= 0x1f300 && r <= 0x1f64f,
		r >= 0x1f900 && r <= 0x1f9ff, r >= 0x20000 && r <= 0x3fffd:
		return 2
	}
	return 1
}
