//go:build unix

package llmslots

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Every bad argument gives an error that matches ErrInvalid and names the
// argument and value, and holds no slot.
func TestBadArgumentsAreRejectedClearly(t *testing.T) {
	t.Setenv(EnvDir, t.TempDir())
	p := newTestPool(t)
	var nilPool *Pool
	cases := []struct {
		name string
		call func() error
		want string
	}{
		{"max 0", func() error { _, err := Acquire(0, 0); return err }, "max must be 1..1024, got 0"},
		{"max -3", func() error { _, err := p.Acquire(-3, 0); return err }, "got -3"},
		{"max 1025", func() error { _, err := p.Acquire(1025, 0); return err }, "got 1025"},
		{"wait -1s", func() error { _, err := Acquire(1, -time.Second); return err }, "wait must be >= 0, got -1s"},
		{"nil ctx", func() error {
			var ctx context.Context
			_, err := AcquireContext(ctx, 1)
			return err
		}, "non-nil context"},
		{"ctx max 0", func() error { _, err := p.AcquireContext(context.Background(), 0); return err }, "got 0"},
		{"status max 0", func() error { _, err := ReadStatus(0); return err }, "max must be"},
		{"stale max 2000", func() error { _, err := FindStale(2000); return err }, "got 2000"},
		{"release -1", func() error { return ForceRelease(-1) }, "slot id must be 0..1023, got -1"},
		{"release 1024", func() error { return p.ForceRelease(1024) }, "got 1024"},
		{"empty dir", func() error { _, err := NewPool(""); return err }, "must not be empty"},
		{"relative dir", func() error { _, err := NewPool("slots"); return err }, `absolute path, got "slots"`},
		{"pool name empty", func() error { _, err := NamedPool(""); return err }, "1-64 characters"},
		{"pool name long", func() error { _, err := NamedPool(strings.Repeat("a", 65)); return err }, "1-64 characters"},
		{"pool name upper", func() error { _, err := NamedPool("Codex"); return err }, `[a-z0-9._-], got "Codex"`},
		{"pool name slash", func() error { _, err := NamedPool("a/b"); return err }, "[a-z0-9._-]"},
		{"pool name dotdot", func() error { _, err := NamedPool(".."); return err }, "must not start with a dot"},
		{"pool name slot", func() error { _, err := NamedPool("slot-0.lock"); return err }, "slot file name"},
		{"label newline", func() error { _, err := NewPool(p.Dir(), WithLabel("a\nb")); return err }, "control characters"},
		{"label C1 CSI", func() error { _, err := NewPool(p.Dir(), WithLabel("a\u009b2Jb")); return err }, "control characters"},
		{"label long", func() error { _, err := NewPool(p.Dir(), WithLabel(strings.Repeat("x", 300))); return err }, "at most 256 bytes"},
		{"label invalid utf8", func() error { _, err := NewPool(p.Dir(), WithLabel("\xff")); return err }, "UTF-8"},
		{"nil pool", func() error { _, err := nilPool.Acquire(1, 0); return err }, "nil or zero"},
		{"zero pool", func() error { _, err := new(Pool).ReadStatus(1); return err }, "nil or zero"},
		{"nil pool release", func() error { return nilPool.ForceRelease(0) }, "nil or zero"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.call()
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v; want ErrInvalid saying %q", err, c.want)
			}
		})
	}
	if entries, _ := os.ReadDir(p.Dir()); len(entries) != 0 {
		t.Fatalf("bad calls left files: %v", entries)
	}
}

func TestDefaultDirectoryPrecedence(t *testing.T) {
	tmp := t.TempDir()
	home := filepath.Join(tmp, "home")
	cases := []struct {
		name, llmslotsDir, xdg string
		want                   string
		wantErr                bool
	}{
		{"override wins over XDG", "/srv/slots", "/run/user/7", "/srv/slots", false},
		{"override is cleaned", "/srv/slots/", "", "/srv/slots", false},
		{"XDG next", "", "/run/user/7", "/run/user/7/llmslots", false},
		{"relative XDG is skipped", "", "run/user/7", filepath.Join(home, ".cache", "llmslots"), false},
		{"cache dir last", "", "", filepath.Join(home, ".cache", "llmslots"), false},
		{"relative override is an error", "slots", "/run/user/7", "slots", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Setenv(EnvDir, c.llmslotsDir)
			t.Setenv("XDG_RUNTIME_DIR", c.xdg)
			t.Setenv("XDG_CACHE_HOME", "")
			t.Setenv("HOME", home)
			if got := Dir(); got != c.want {
				t.Errorf("Dir() = %q; want %q", got, c.want)
			}
			if got := SlotPath(2); got != filepath.Join(c.want, "slot-2.lock") {
				t.Errorf("SlotPath(2) = %q", got)
			}
			_, err := defaultDir()
			if c.wantErr != (err != nil) {
				t.Fatalf("defaultDir error %v", err)
			}
			if c.wantErr {
				if _, err := Acquire(1, 0); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), EnvDir) {
					t.Fatalf("Acquire with a relative %s: %v", EnvDir, err)
				}
			}
		})
	}
}

func TestNamedPoolsLimitSeparately(t *testing.T) {
	t.Setenv(EnvDir, t.TempDir())
	codex, err := NamedPool("codex")
	if err != nil {
		t.Fatal(err)
	}
	claude, _ := NamedPool("claude")
	if codex.Dir() != filepath.Join(Dir(), "codex") {
		t.Fatalf("codex pool at %s", codex.Dir())
	}
	mustAcquire(t, codex, 1, 0)
	mustAcquire(t, claude, 1, 0)
	if g, err := Acquire(1, 0); err != nil {
		t.Fatalf("default pool blocked by named pools: %v", err)
	} else {
		g.Release()
	}
	if _, err := codex.Acquire(1, 0); !errors.Is(err, ErrBusy) {
		t.Fatalf("codex pool over its limit: %v", err)
	}
	// The default pool's status ignores the named pools' directories.
	if st, err := ReadStatus(1); err != nil || len(st.Slots) != 1 || st.Active != 0 {
		t.Fatalf("%+v %v", st, err)
	}
}

func TestUnsafeDirectoriesAreRefused(t *testing.T) {
	t.Run("not a directory", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "file")
		os.WriteFile(path, []byte("x"), 0o600)
		p, _ := NewPool(path)
		_, err := p.Acquire(1, 0)
		if !errors.Is(err, ErrUnsafeDir) || !strings.Contains(err.Error(), path+" is not a directory") {
			t.Fatalf("got %v", err)
		}
		if _, err := p.ReadStatus(1); !errors.Is(err, ErrUnsafeDir) {
			t.Fatalf("status: %v", err)
		}
		if data, _ := os.ReadFile(path); string(data) != "x" {
			t.Fatal("the file was changed")
		}
	})
	t.Run("writable by others", func(t *testing.T) {
		dir := t.TempDir()
		os.Chmod(dir, 0o777)
		p, _ := NewPool(dir)
		_, err := p.Acquire(1, 0)
		if !errors.Is(err, ErrUnsafeDir) || !strings.Contains(err.Error(), "mode 0777") || !strings.Contains(err.Error(), "chmod go-w "+dir) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("owned by another user", func(t *testing.T) {
		if os.Geteuid() != 0 {
			t.Skip("needs root to give a directory away")
		}
		dir := t.TempDir()
		if err := os.Chown(dir, 65534, 65534); err != nil {
			t.Fatal(err)
		}
		p, _ := NewPool(dir)
		_, err := p.Acquire(1, 0)
		if !errors.Is(err, ErrUnsafeDir) || !strings.Contains(err.Error(), "belongs to uid 65534") {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("created 0700", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "a", "b")
		p, _ := NewPool(dir)
		mustAcquire(t, p, 1, 0)
		fi, err := os.Stat(dir)
		if err != nil || fi.Mode().Perm() != 0o700 {
			t.Fatalf("created %v %v", fi.Mode(), err)
		}
		if fi, _ := os.Stat(p.SlotPath(0)); fi.Mode().Perm() != 0o600 {
			t.Fatalf("slot file mode %v", fi.Mode())
		}
	})
}
