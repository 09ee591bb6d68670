package slotfile

import (
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/llmslots/llmslots/internal/filelock"
)

// A Maker makes a pool's files: private to their owner (mode 0600), or,
// with Shared, readable and writable by the Unix group GID (mode 0660),
// for a pool that several users share.
type Maker struct {
	Shared bool
	GID    int
}

// groupFileMode is the mode of every file in a group's pool.
const groupFileMode = 0o660

// newbornAge is how old a NewbornPrefix file must be before Sweep removes
// it: its maker links it into place within microseconds, or died.
const newbornAge = time.Minute

// New makes a new file for path, exclusively, open read-write. In a
// group's pool it is made under a hidden name beside path (at), given the
// group's mode, and left for the caller to lock and then link or rename
// to path: another member never meets it with the wrong mode. Elsewhere
// at is path itself. An existing path gives an error matching
// fs.ErrExist.
func (m Maker) New(path, kind string) (f *os.File, at string, err error) {
	if !m.Shared {
		f, err = filelock.Open(path, true)
		if err != nil {
			return nil, "", err
		}
		if TestHooks.Birth != nil {
			TestHooks.Birth(kind, path)
		}
		return f, path, nil
	}
	if _, err := os.Lstat(path); err == nil {
		return nil, "", &fs.PathError{Op: "open", Path: path, Err: fs.ErrExist}
	}
	for range 3 {
		at = filepath.Join(filepath.Dir(path), fmt.Sprintf("%s%d-%016x", NewbornPrefix, os.Getpid(), rand.Uint64()))
		f, err = os.OpenFile(at, os.O_RDWR|os.O_CREATE|os.O_EXCL|filelock.NoFollow, groupFileMode)
		if errors.Is(err, fs.ErrExist) {
			continue // another name drawn by chance
		}
		if err != nil {
			return nil, "", err
		}
		if TestHooks.Birth != nil {
			TestHooks.Birth(kind, path)
		}
		if err := m.share(f); err != nil {
			os.Remove(at)
			f.Close()
			return nil, "", err
		}
		return f, at, nil
	}
	return nil, "", fmt.Errorf("could not make a new file beside %s", path)
}

// share gives f the group's ownership and mode (umask would narrow it).
func (m Maker) share(f *os.File) error {
	if err := f.Chown(-1, m.GID); err != nil {
		return err
	}
	return f.Chmod(groupFileMode)
}

// publish gives the file made at at (locked, with the identity fi) its
// name path, failing with fs.ErrExist if path exists: link(2) is the
// exclusive create of a file that already exists. The hidden name goes.
func publish(at, path string, fi fs.FileInfo) error {
	err := os.Link(at, path)
	if errors.Is(err, fs.ErrExist) && filelock.StillAt(path, fi) {
		err = nil // a network filesystem's retried link: it is ours
	}
	os.Remove(at)
	return err
}

// Take tries to take the slot file at path: it creates the file, locks it
// and writes rec. exists reports that the file was there already (held,
// or a dead holder's: see Probe); f nil with no error and exists false
// means another process was taking the same file at that instant.
//
// A slot is only ever held through a file its holder created. That leaves
// one window, between creating and locking, in which a prober may take
// the new file for a dead holder's and delete it (the unlink race: the
// creator would lock a file with no name while another process creates
// and locks a new one). So after locking, Take checks that its file still
// has its name, and starts over if not. In a group's pool the file is
// locked before it has its name (see New), and the window does not exist.
func (m Maker) Take(path string, rec []byte) (t *Taken, exists bool, err error) {
	// Each restart means another process made progress on this slot; if
	// it keeps changing, report it taken.
	for range 4 {
		f, at, err := m.New(path, "slot")
		if errors.Is(err, fs.ErrExist) {
			return nil, true, nil
		}
		if err != nil {
			return nil, false, err
		}
		drop := func() {
			if at != path {
				os.Remove(at)
			}
			f.Close()
		}
		if TestHooks.BeforeLock != nil {
			TestHooks.BeforeLock(path)
		}
		ok, err := filelock.TryLock(f)
		if err != nil || !ok {
			drop() // a prober has it this instant
			return nil, false, err
		}
		// The lock, not the record, holds the slot: a failed write (a
		// full disk) leaves it held, its holder unknown to status.
		_, recErr := f.Write(rec)
		if at != path {
			fi, err := f.Stat()
			if err == nil {
				err = publish(at, path, fi)
			}
			if errors.Is(err, fs.ErrExist) {
				f.Close()
				return nil, true, nil
			}
			if err != nil {
				f.Close()
				return nil, false, err
			}
		}
		fi, err := f.Stat()
		if err != nil {
			drop()
			return nil, false, err
		}
		// On a network filesystem a file deleted while open may be
		// renamed (NFS's .nfsXXXX) and keep its link: check the path.
		if !filelock.Linked(fi) || !filelock.StillAt(path, fi) {
			f.Close() // deleted under us: see above
			continue
		}
		return &Taken{File: f, Info: fi, RecordErr: recErr}, false, nil
	}
	return nil, false, nil
}

// Taken is a slot file Take took: locked, with its name.
type Taken struct {
	File *os.File
	Info fs.FileInfo // its identity, checked before it is removed
	// RecordErr says why the record could not be written, if it could not.
	RecordErr error
}

// Sweep removes the NewbornPrefix files in dir older than a minute: a
// group member that died between making a file and linking it into place
// left them.
func Sweep(dir string) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), NewbornPrefix) {
			continue
		}
		path := filepath.Join(dir, e.Name())
		if fi, err := os.Lstat(path); err == nil && fi.Mode().IsRegular() && time.Since(fi.ModTime()) > newbornAge {
			os.Remove(path)
		}
	}
}

// Create makes a new file at path itself, exclusively, open read-write,
// with the pool's mode: for files that are never locked to be taken (the
// throttle's), which need no hidden birth.
func (m Maker) Create(path string) (*os.File, error) {
	if !m.Shared {
		return filelock.Open(path, true)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL|filelock.NoFollow, groupFileMode)
	if err != nil {
		return nil, err
	}
	if err := m.share(f); err != nil {
		os.Remove(path)
		f.Close()
		return nil, err
	}
	return f, nil
}
