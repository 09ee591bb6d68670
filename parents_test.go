//go:build linux

package llmslots

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// The whole path to a pool directory is checked, as sshd's StrictModes
// checks a home directory: not just the pool directory itself. Before, a
// named pool under a 0777 LLMSLOTS_DIR was accepted, and under a
// world-writable, non-sticky parent another user could swap the pool
// directory for a link to another directory of the victim's, which gave
// a pool of one a second holder.
func TestEveryDirectoryAbovePoolIsChecked(t *testing.T) {
	open := t.TempDir() // a world-writable, non-sticky directory
	if err := os.Chmod(open, 0o777); err != nil {
		t.Fatal(err)
	}
	t.Setenv(EnvDir, open)
	p, err := NamedPool("codex")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Acquire(1, 0); !errors.Is(err, ErrUnsafeDir) {
		t.Errorf("named pool under a 0777 LLMSLOTS_DIR: got %v; want ErrUnsafeDir", err)
	}
	deep, err := NewPool(filepath.Join(open, "a", "b", "pool"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := deep.Acquire(1, 0); !errors.Is(err, ErrUnsafeDir) {
		t.Errorf("pool two levels below a 0777 directory: got %v; want ErrUnsafeDir", err)
	}
	// Sticky, as /tmp is: fine.
	sticky := t.TempDir()
	if err := os.Chmod(sticky, 0o777|os.ModeSticky); err != nil {
		t.Fatal(err)
	}
	ok, _ := NewPool(filepath.Join(sticky, "pool"))
	g, err := ok.Acquire(1, 0)
	if err != nil {
		t.Fatalf("pool under a sticky world-writable directory: %v", err)
	}
	g.Release()

	if os.Geteuid() != 0 {
		t.Skip("the other-user link needs root to chown")
	}
	// A link on the way, owned by another user, in a sticky directory:
	// its owner chooses where the pool is.
	target := t.TempDir()
	link := filepath.Join(sticky, "their-link")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	if err := os.Lchown(link, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	viaLink, _ := NewPool(link)
	if _, err := viaLink.Acquire(1, 0); !errors.Is(err, ErrUnsafeDir) {
		t.Errorf("pool through another user's link: got %v; want ErrUnsafeDir", err)
	}
	// The same link, ours: fine.
	if err := os.Lchown(link, 0, 0); err != nil {
		t.Fatal(err)
	}
	g, err = viaLink.Acquire(1, 0)
	if err != nil {
		t.Fatalf("pool through our own link: %v", err)
	}
	g.Release()
}
