//go:build unix

package throttle

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadUnusable(t *testing.T) {
	for _, c := range []struct {
		name  string
		plant func(t *testing.T, path string)
		err   string
	}{
		{"garbage", func(t *testing.T, path string) { os.WriteFile(path, []byte("\x00\xff\n"), 0o600) }, "not usable"},
		{"a symbolic link", func(t *testing.T, path string) {
			target := filepath.Join(t.TempDir(), "state")
			os.WriteFile(target, Marshal(full), 0o600)
			os.Symlink(target, path)
		}, "a symbolic link, which llmslots never makes"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			c.plant(t, filepath.Join(dir, FileName))
			st, err := Load(dir)
			if st != nil || err == nil || !strings.Contains(err.Error(), c.err) {
				t.Fatalf("Load = %v, %v; want nil and an error saying %q", st, err, c.err)
			}
		})
	}
}

// A lock file that is not a regular file is refused, not followed.
func TestLockRefusesALink(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(t.TempDir(), "lock")
	if err := os.WriteFile(target, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, filepath.Join(dir, LockName)); err != nil {
		t.Fatal(err)
	}
	if _, err := Lock(dir, 0, create); err == nil {
		t.Fatal("Lock through a symbolic link succeeded")
	}
}
