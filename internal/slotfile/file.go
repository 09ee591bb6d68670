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

// A Maker makes a pool's files: private (mode 0600), or with Shared, the
// Unix group GID's (mode 0660), for a pool that several users share.
type Maker struct {
	Shared bool
	GID    int
}

// groupFileMode is the mode of every file in a group's pool.
const groupFileMode = 0o660

// Create makes a new file at path, exclusively, open read-write, with the
// pool's mode. An existing path gives an error matching fs.ErrExist.
func (m Maker) Create(path string) (*os.File, error) { return m.create(path, "") }

// create is Create; kind ("slot", "ticket") names the file for
// TestHooks.Birth, which runs before a group's file has its mode.
func (m Maker) create(path, kind string) (f *os.File, err error) {
	if m.Shared {
		f, err = os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL|filelock.NoFollow, groupFileMode)
	} else {
		f, err = filelock.Open(path)
	}
	if err != nil {
		return nil, err
	}
	if TestHooks.Birth != nil {
		TestHooks.Birth(kind, path)
	}
	if m.Shared {
		// The umask narrows the mode: set it, and the group, explicitly.
		if err = f.Chown(-1, m.GID); err == nil {
			err = f.Chmod(groupFileMode)
		}
		if err != nil {
			os.Remove(path)
			f.Close()
			return nil, err
		}
	}
	return f, nil
}

// New makes a new file for path: at path, or in a group's pool at a hidden
// name beside it (at) to lock, then link or rename to path, so no member
// meets it without the group's mode. An existing path fails (fs.ErrExist).
func (m Maker) New(path, kind string) (f *os.File, at string, err error) {
	at = path
	if m.Shared {
		if _, err := os.Lstat(path); err == nil {
			return nil, "", &fs.PathError{Op: "open", Path: path, Err: fs.ErrExist}
		}
		at = hiddenBeside(path)
	}
	f, err = m.create(at, kind)
	return f, at, err
}

// hiddenBeside is a new name, hidden by NewbornPrefix, beside path.
func hiddenBeside(path string) string {
	return filepath.Join(filepath.Dir(path), fmt.Sprintf("%s%d-%016x", NewbornPrefix, os.Getpid(), rand.Uint64()))
}

// Taken is a slot file Take took: locked, with its name.
type Taken struct {
	File      *os.File
	Info      fs.FileInfo // its identity, checked before it is removed
	RecordErr error       // why the record was not written, if it was not
}

// Take tries to take the slot file at path: it creates the file, locks it
// and writes rec. exists reports that the file was there already (held,
// or a dead holder's: see Probe); t nil with no error and exists false
// means another process was taking the same file at that instant.
//
// Between creating and locking, a prober may take the new file for a dead
// holder's and delete it, and another process make a new one (the unlink
// race): so Take checks after locking that its file still has its name,
// and starts over if not. In a group's pool it locks before it names.
func (m Maker) Take(path string, rec []byte) (t *Taken, exists bool, err error) {
	for range 4 {
		f, at, err := m.New(path, "slot")
		if errors.Is(err, fs.ErrExist) {
			return nil, true, nil
		}
		if err != nil {
			return nil, false, err
		}
		if TestHooks.BeforeLock != nil {
			TestHooks.BeforeLock(path)
		}
		var fi fs.FileInfo
		var recErr error
		ok, err := filelock.TryLock(f) // not ok: a prober has it this instant
		if ok {
			// The lock, not the record, holds the slot: a failed write
			// (a full disk) leaves it held, its holder unknown to status.
			_, recErr = f.Write(rec)
			fi, err = f.Stat()
		}
		if ok && err == nil && at != path {
			// link(2) is the exclusive create of a file that exists.
			err = os.Link(at, path)
			if errors.Is(err, fs.ErrExist) && filelock.StillAt(path, fi) {
				err = nil // a network filesystem's retried link: it is ours
			}
		}
		if at != path {
			os.Remove(at)
		}
		if !ok || err != nil {
			f.Close()
			if errors.Is(err, fs.ErrExist) {
				return nil, true, nil
			}
			return nil, false, err
		}
		// Deleted under us (see above)? On NFS a file deleted while open
		// is renamed (.nfsXXXX) and keeps its link: check the path too.
		if !filelock.Linked(fi) || !filelock.StillAt(path, fi) {
			f.Close()
			continue
		}
		return &Taken{File: f, Info: fi, RecordErr: recErr}, false, nil
	}
	return nil, false, nil
}

// Sweep removes the NewbornPrefix files in dir older than a minute: a
// group member that died before linking one into place left it.
func Sweep(dir string) {
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), NewbornPrefix) || !e.Type().IsRegular() {
			continue
		}
		if fi, err := e.Info(); err == nil && time.Since(fi.ModTime()) > time.Minute {
			os.Remove(filepath.Join(dir, e.Name()))
		}
	}
}

// TestHooks, set by tests only, run inside the windows that races live in,
// so that a test can make the race happen every time instead of rarely.
var TestHooks struct {
	BeforeLock      func(path string)       // in Take, between create and lock
	ProbeBeforeLock func(path string)       // in Probe, between look and lock
	Birth           func(kind, path string) // as soon as a file is made
}
