//go:build !linux

package llmslots

// testNoSpares is set by tests that want the classic path, which is the
// only one here (see spare_linux.go).
//
//lint:ignore U1000 tests set it; nothing here reads it, since there are no spares
var testNoSpares bool
