// Package textsafe says which characters no name, label or record field
// may hold, for the library and the command alike.
package textsafe

import "strings"

// IsControl reports the characters refused in names and labels, and
// turned into spaces in records read: C0 (a newline would split a record
// or end a shell script's comment and start a command), DEL, C1 (U+009B
// is CSI to some terminals), and the bidirectional controls (U+061C,
// U+200E-U+200F, U+202A-U+202E, U+2066-U+2069), which reorder what a
// terminal shows: U+202E makes "slot 1 held" read backwards.
func IsControl(r rune) bool {
	switch {
	case r < 0x20, r >= 0x7f && r <= 0x9f:
		return true
	case r == 0x061c, r == 0x200e, r == 0x200f, r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069:
		return true
	}
	return false
}

// Clean makes s valid UTF-8, with IsControl's characters turned to spaces.
func Clean(s string) string {
	return strings.Map(func(r rune) rune {
		if IsControl(r) {
			return ' '
		}
		return r
	}, strings.ToValidUTF8(s, "?"))
}
