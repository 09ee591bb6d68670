// Package llmslots limits how many processes of one user, across the whole
// host, do something at once: at most max holders of a pool's slots, and
// a holder that crashes never takes its slot with it.
//
// It was written for agent sessions that each spawn `codex exec` or
// `claude -p` against one account's rate limit, and serves any scarce
// resource shared by cooperating processes:
//
//	g, err := llmslots.Acquire(3, 2*time.Minute)
//	if err != nil {
//		return err
//	}
//	defer g.Release()
//	return g.Command("codex", "exec", "review the diff in HEAD").Run()
//
// The child started by Guard.Command holds the slot too, for as long as it
// lives: the limit holds for the codex or claude process itself, even when
// this program is killed or releases first. A child started with a plain
// exec.Command is not covered.
//
// # Protocol
//
// A pool is a directory holding slot-0.lock .. slot-(max-1).lock. To take
// slot i a process creates its file exclusively, or opens the existing one,
// and takes a non-blocking exclusive flock on it. The lock, never the
// file's existence, decides whether the slot is held: the kernel drops the
// lock of a process that dies by any means, so a file whose lock can be
// taken belonged to a dead holder and is reclaimed on the spot. After
// locking, the holder checks that the file it locked is still the one at
// the path (against the unlink race, which docs/design.md explains), then
// writes its record: "pid=<pid>" and key=value lines naming host, time,
// process start time, command line, label and max. Release deletes the
// file while still holding its lock, then closes it.
//
// # Handing a slot on
//
// Guard.Command, Guard.CommandContext, Guard.Inherit (before cmd.Start)
// and Guard.PrepareExec (before syscall.Exec) hand the slot on: it is free
// only once every process that shares its lock has exited, and Release
// hands it over rather than deleting it. The child learns what it holds
// from the environment variable LLMSLOTS_INHERITED, "fd=N;slot=ID;dir=DIR":
// the descriptor that holds the locked slot file, the slot's id and its
// pool's directory, one line per pool (a "codex" slot taken inside a
// "claude" slot). The directory comes last, so it may hold any character
// but a newline. A process started so that acquires a slot of one of those
// pools gets the inherited slot back at once, as a nested guard, instead of
// waiting on its own ancestor's slot (with max=1, forever). The descriptor
// is trusted only once checked: open on the very file at the slot's path,
// still linked, and locked by this open file; a stale variable is ignored.
// Callers never set the variable themselves.
//
// # Waiting
//
// Waiters are served in arrival order through a line of ticket files in
// the pool's .queue directory, each locked by its waiter. A waiter blocks
// in a shared flock on the ticket right ahead of it (the first in line, on
// the held slot files), which the kernel grants the instant that lock's
// holder lets go or dies: a release wakes one process, and an idle waiter
// makes no system call, on every platform alike. A first in line that does
// not take a free slot within a second (a stopped process) is passed by
// the waiter behind it. docs/design.md has the details.
package llmslots
