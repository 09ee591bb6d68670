package llmslots

import (
	"os"
	"path/filepath"
	"sync"

	"github.com/llmslots/llmslots/internal/filelock"
)

// idleMarks keeps the descriptors of .queue/waiters that this process's
// waiters left, their marks removed, for the next waiter of the pool. A
// process whose work releases and asks again waits at every acquire, and
// opening the file cost two system calls (the open, and Go's poller
// refusing a regular file); a kept one costs one fstat.
//
// Each waiter has a descriptor of its own while it waits, taken off the
// list or opened: marks are locks of open file descriptions, and two
// waiters sharing one would share one mark, the first to leave removing
// the other's. A process that dies drops its marks with its descriptors,
// kept or not.
type idleMarks struct {
	mu    sync.Mutex
	files []*os.File
}

// maxIdleMarks bounds the descriptors kept per pool: as many as the
// process's waiters of the pool that leave at about the same time.
const maxIdleMarks = 2

// open returns a descriptor of qdir's waiters file, unmarked, for one
// waiter: a kept one if its file still has a name (the pool's directory
// may have been removed and made again since, and a mark on the old file
// would be seen by no one), else a new one.
func (m *idleMarks) open(qdir string) (*os.File, error) {
	for {
		m.mu.Lock()
		n := len(m.files)
		if n == 0 {
			m.mu.Unlock()
			break
		}
		f := m.files[n-1]
		m.files = m.files[:n-1]
		m.mu.Unlock()
		// The file must still be the queue's: a queue removed (or renamed)
		// and made again has a new waiters file, and a mark on the old one
		// would be seen by nobody. Its link alone does not tell: an NFS
		// file deleted while open is renamed and keeps one.
		if fi, err := f.Stat(); err == nil && filelock.Linked(fi) && filelock.StillAt(filepath.Join(qdir, waitersFileName), fi) {
			return f, nil
		}
		f.Close()
	}
	return os.OpenFile(filepath.Join(qdir, waitersFileName), os.O_RDONLY|filelock.NoFollow, 0)
}

// put keeps f, unmarked, for the next waiter; false when enough are kept.
func (m *idleMarks) put(f *os.File) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.files) >= maxIdleMarks {
		return false
	}
	m.files = append(m.files, f)
	return true
}

// unmark removes the waiter's mark: the descriptor is unmarked and kept
// for the next waiter, or closed, which removes the mark as well.
func (t *ticket) unmark() {
	if filelock.UnmarkWaiting(t.waiters) != nil || !t.marks.put(t.waiters) {
		t.waiters.Close()
	}
	t.waiters = nil
}
