//go:build unix

package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// A sticky directory writable by all (/tmp, /var/tmp, /dev/shm) is a
// shared place, not a pool: the refusal advises a directory of one's own
// in it, never "chmod go-w", which would break the place for every other
// user. The advice, followed, works.
func TestSharedPlaceAdvisesAPrivateDirectory(t *testing.T) {
	e := newEnv(t)
	shared := filepath.Join(t.TempDir(), "tmp")
	if err := os.Mkdir(shared, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(shared, 0o777|os.ModeSticky); err != nil {
		t.Fatal(err)
	}
	places := []string{shared}
	if fi, err := os.Stat("/tmp"); err == nil && fi.Mode()&os.ModeSticky != 0 && ownedByMe(fi) {
		places = append(places, "/tmp") // the case; as root
	}
	for _, dir := range places {
		private := fmt.Sprintf("%s/llmslots-%d", dir, os.Geteuid())
		r := e.runEnv(e.with("LLMSLOTS_DIR="+dir), "", "run", "--", "echo", "ran")
		if r.code != 1 || r.stdout != "" || strings.Count(r.stderr, "\n") != 1 {
			t.Fatalf("LLMSLOTS_DIR=%s: exit %d, stdout %q, stderr %q; want a refusal", dir, r.code, r.stdout, r.stderr)
		}
		if strings.Contains(r.stderr, "chmod") || !strings.Contains(r.stderr, "LLMSLOTS_DIR") ||
			!strings.Contains(r.stderr, private) || !strings.Contains(r.stderr, "0700") {
			t.Errorf("LLMSLOTS_DIR=%s: %q; want the advice to use %s, mode 0700, and no chmod", dir, r.stderr, private)
		}
		if dir == "/tmp" {
			if _, err := os.Lstat(private); err == nil {
				continue // someone's already: leave it alone
			}
			defer os.RemoveAll(private)
		}
		r = e.runEnv(e.with("LLMSLOTS_DIR="+private), "", "run", "--", "echo", "ran")
		if r.code != 0 || r.stdout != "ran\n" {
			t.Errorf("following the advice, LLMSLOTS_DIR=%s: exit %d, %q %q", private, r.code, r.stdout, r.stderr)
		}
		if fi, err := os.Stat(private); err != nil || fi.Mode().Perm() != 0o700 {
			t.Errorf("%s: %v, %v; want a directory of mode 0700", private, fi.Mode(), err)
		}
	}
}

// ownedByMe reports whether this process's user owns the file.
func ownedByMe(fi os.FileInfo) bool {
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && int(st.Uid) == os.Geteuid()
}
