package llmslots

import (
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/llmslots/llmslots/internal/filelock"
	"github.com/llmslots/llmslots/internal/perm"
)

// EnvGroup, when set, makes every pool shared by the members of a Unix
// group, named or numbered (see WithGroup); WithGroup on a pool wins.
const EnvGroup = "LLMSLOTS_GROUP"

// group says who may share a pool: its owner alone (the default), or the
// members of one Unix group.
type group struct {
	shared bool
	gid    int
}

// groupFileMode is the mode of every file in a group's pool: members read
// each other's records and probe each other's locks. Every file has it,
// and the pool's group, from the instant its name can be seen (newFile).
const groupFileMode = 0o660

// WithGroup makes the pool shared by the members of the Unix group gid,
// for agents that run as different users but share one account's rate
// limit. The pool directory must then belong to that group and give it
// full access, with nothing for others, with the setgid bit and without
// the sticky bit (mode 2770, which the package creates, under a parent
// that must exist and that the group can reach); the caller must be a
// member. Slot files are made group-readable and -writable. A live holder
// of another user is never taken for dead (its lock decides, and
// kill(pid, 0) answering EPERM means alive). Group members are trusted
// with each other's slots: the directory is group-writable, so any member
// can delete another's slot file. Not available on Windows.
func WithGroup(gid int) Option {
	return func(p *Pool) error {
		if gid < 0 {
			return invalidf("group id must be >= 0, got %d", gid)
		}
		if !perm.GroupsSupported {
			return invalidf("group-shared pools need Unix permissions; not available on this platform")
		}
		p.group = group{shared: true, gid: gid}
		return nil
	}
}

// groupFromEnv reads LLMSLOTS_GROUP: a group name or a numeric gid.
func groupFromEnv() (group, error) {
	v := os.Getenv(EnvGroup)
	if v == "" {
		return group{}, nil
	}
	if !perm.GroupsSupported {
		return group{}, &EnvError{Var: EnvGroup, Value: v, Reason: "asks for a group-shared pool, which this platform does not have"}
	}
	if n, err := strconv.Atoi(v); err == nil && n >= 0 {
		return group{shared: true, gid: n}, nil
	}
	g, err := user.LookupGroup(v)
	if err != nil {
		return group{}, &EnvError{Var: EnvGroup, Value: v, Reason: "is neither a group name nor a gid (" + err.Error() + ")"}
	}
	gid, err := strconv.Atoi(g.Gid)
	if err != nil {
		return group{}, &EnvError{Var: EnvGroup, Value: v, Reason: "names a group whose id " + strconv.Quote(g.Gid) + " is not a number"}
	}
	return group{shared: true, gid: gid}, nil
}

// testHookBirth, when set by a test, runs right after a file of kind
// ("ticket", "slot", "spare") has been created for path, before it has
// its final mode: the window in which a file born private could be seen.
var testHookBirth func(kind, path string)

// newbornPrefix starts the name a file of a group's pool has before it is
// ready to be seen: no process ever looks at such names, so another
// member never meets the file before it has its final mode and group.
const newbornPrefix = ".new-"

// newbornAge is how old a file under a newborn name must be before a
// sweep deletes it as the leftover of a process killed while making it;
// a maker stopped for longer finds its file gone and makes another.
const newbornAge = time.Minute

// newFile creates a new file meant for path, with its final mode from the
// instant any process may look at it. In a private pool that is path
// itself, mode 0600. In a group's pool the umask may have narrowed the
// mode asked of open, and a chmod after the name is visible leaves a
// window in which other members are refused the file (and a maker killed
// inside it leaves one they can never open). So there the file is made
// under a hidden name beside path (at), given the pool's group and
// groupFileMode, and the caller gives it its name once it is locked:
// publishNew, or a rename for a name nobody else can choose. With hidden
// false (where hard links are refused, so publishNew cannot work) it is
// made at path, asked for groupFileMode and given it at once: seen before
// that only where the umask takes the group's access away.
func (p *Pool) newFile(path, kind string, hidden bool) (f *os.File, at string, err error) {
	if !p.group.shared || !hidden {
		if !p.group.shared {
			f, err = filelock.Open(path, true)
		} else {
			f, err = os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL|filelock.NoFollow, groupFileMode)
		}
		if err != nil {
			return nil, "", err
		}
		if testHookBirth != nil {
			testHookBirth(kind, path)
		}
		if err := p.shareFile(f); err != nil {
			os.Remove(path)
			f.Close()
			return nil, "", err
		}
		return f, path, nil
	}
	for range 3 {
		at = filepath.Join(filepath.Dir(path), fmt.Sprintf("%s%d-%016x", newbornPrefix, os.Getpid(), rand.Uint64()))
		f, err = os.OpenFile(at, os.O_RDWR|os.O_CREATE|os.O_EXCL|filelock.NoFollow, groupFileMode)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return nil, "", err
		}
		if testHookBirth != nil {
			testHookBirth(kind, path)
		}
		if err := p.shareFile(f); err != nil {
			os.Remove(at)
			f.Close()
			return nil, "", err
		}
		return f, at, nil
	}
	return nil, "", fmt.Errorf("could not make a new file beside %s", path)
}

// publishNew gives the file at (from newFile) the name path, only if
// path does not exist, and drops the hidden name: an error matching
// fs.ErrExist means path exists. A filesystem without hard links gets
// errLinks; the file at at is then left for the caller to remove.
func publishNew(at, path string, fi fs.FileInfo) error {
	err := os.Link(at, path)
	if errors.Is(err, fs.ErrExist) && filelock.StillAt(path, fi) {
		err = nil // a network filesystem's retried link: it is ours
	}
	switch {
	case err == nil:
		os.Remove(at)
		return nil
	case errors.Is(err, fs.ErrExist), errors.Is(err, fs.ErrNotExist):
		return err
	}
	return fmt.Errorf("%w: %w", errLinks, err)
}

// errLinks reports a hard link refused where a file was to get its name.
var errLinks = errors.New("no hard links here")

// shareFile gives a file just made in a group's pool the group and mode
// of the pool: the directory's setgid bit gives new files its group, and
// the umask may have narrowed the mode. Nothing to do in a private pool.
func (p *Pool) shareFile(f *os.File) error {
	if !p.group.shared {
		return nil
	}
	if err := f.Chown(-1, p.group.gid); err != nil {
		return err
	}
	return f.Chmod(groupFileMode)
}

// sweepNewborn deletes from dir the files left under a newborn name by
// processes killed while making them, once they are newbornAge old.
// Nobody ever opens such a file, so it needs no lock: the directory's
// write permission is enough to delete it, whoever made it.
func sweepNewborn(dir string) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), newbornPrefix) {
			continue
		}
		path := filepath.Join(dir, e.Name())
		if fi, err := os.Lstat(path); err == nil && fi.Mode().IsRegular() && time.Since(fi.ModTime()) > newbornAge {
			os.Remove(path)
		}
	}
}

// makeGroupDir makes dir for the members of gid: a pool's directory (pool
// set) with its queue directory and waiters file, or a queue directory
// with its waiters file; every directory mode 2770 and every file 0660,
// all the group's. It is built complete under a hidden name beside dir,
// then renamed to dir; where another member's rename won, this one's is
// removed and theirs is used (the caller checks it). So members making a
// pool at the same instant, or again once it was removed, never meet it
// with its maker's own group, a narrower mode, or half made.
func makeGroupDir(dir string, gid int, pool bool) error {
	tmp := filepath.Join(filepath.Dir(dir), fmt.Sprintf("%sllmslots-%d-%016x", newbornPrefix, os.Getpid(), rand.Uint64()))
	err := buildGroupDir(tmp, gid, pool)
	if err == nil {
		// A directory that exists and is not empty is never replaced:
		// another member's complete one holds at least its queue.
		err = os.Rename(tmp, dir)
	}
	if err != nil {
		os.RemoveAll(tmp)
		if fi, serr := os.Lstat(dir); serr == nil && fi.IsDir() {
			return nil // made meanwhile by another member
		}
		return err
	}
	return nil
}

func buildGroupDir(dir string, gid int, pool bool) error {
	if err := os.Mkdir(dir, 0o700); err != nil {
		return err
	}
	if pool {
		if err := buildGroupDir(filepath.Join(dir, queueDirName), gid, false); err != nil {
			return err
		}
	} else {
		f, err := os.OpenFile(filepath.Join(dir, waitersFileName), os.O_RDONLY|os.O_CREATE|os.O_EXCL|filelock.NoFollow, groupFileMode)
		if err != nil {
			return err
		}
		if err = f.Chown(-1, gid); err == nil {
			err = f.Chmod(groupFileMode)
		}
		f.Close()
		if err != nil {
			return err
		}
	}
	return perm.Share(dir, gid, fs.ModeSetgid|0o770)
}

// openWaiters opens the queue's waiters file, making it if it is missing.
// A group's pool has it from the start (makeGroupDir).
func (p *Pool) openWaiters(path string) (*os.File, error) {
	return p.openPoolFile(path, "waiters", os.O_RDONLY)
}

// openPoolFile opens the pool's shared file path (the waiters file, the
// slot map) with flag, making it if it is missing. In a group's pool a new
// one is given its final mode (newFile) and linked in unless another
// member's came first.
func (p *Pool) openPoolFile(path, kind string, flag int) (*os.File, error) {
	if !p.group.shared {
		return os.OpenFile(path, flag|os.O_CREATE|filelock.NoFollow, 0o600)
	}
	for range 3 {
		f, err := os.OpenFile(path, flag|filelock.NoFollow, 0)
		if !errors.Is(err, fs.ErrNotExist) {
			return f, err
		}
		nf, at, err := p.newFile(path, kind, !p.noLinks.Load())
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if at != path {
			fi, serr := nf.Stat()
			if serr == nil {
				serr = publishNew(at, path, fi)
			}
			if errors.Is(serr, errLinks) {
				p.noLinks.Store(true)
			}
			os.Remove(at)
		}
		nf.Close()
	}
	return os.OpenFile(path, flag|filelock.NoFollow, 0)
}

// soleRegular refuses a pool file that llmslots did not make as it is: one
// that is not a regular file, or has a second name (a hard link planted so
// that this process writes or truncates a file its planter cannot).
func soleRegular(path string, fi fs.FileInfo) error {
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("llmslots: %s is %s, not the regular file llmslots makes; remove it", path, describe(fi))
	}
	if n, ok := filelock.Links(fi); ok && n != 1 {
		return fmt.Errorf("llmslots: %s has %d names, not the one llmslots gives it; remove it", path, n)
	}
	return nil
}
