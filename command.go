package llmslots

import (
	"context"
	"os"
	"os/exec"
	"syscall"
	"time"
)

// CommandGrace is how long CommandContext's child is given to exit after
// SIGTERM, once its context is done, before it is killed.
const CommandGrace = 10 * time.Second

// Command returns the *exec.Cmd to run the named program holding g's slot,
// as exec.Command does: the child holds the slot for as long as it (or a
// descendant that keeps the descriptor) lives, so the limit holds for the
// child itself, not only for this process. A parent killed by SIGKILL, or
// stopped by SIGTERM or SIGINT sent to its pid alone, never frees the slot
// while its child runs; nor does Release (see Release).
//
// The slot is handed on as Inherit does: through cmd.ExtraFiles and the
// LLMSLOTS_INHERITED entry of cmd.Env. Append to either; do not replace
// them. A failure to hand the slot on (a released Guard; Windows, where a
// lock cannot be passed to a child: errors.ErrUnsupported) is put in
// cmd.Err, as exec.Command puts a failed path lookup there: Start, Run and
// Output return it and the program does not run. So the call chains:
//
//	out, err := g.Command("codex", "exec", prompt).Output()
func (g *Guard) Command(name string, arg ...string) *exec.Cmd {
	cmd := exec.Command(name, arg...)
	g.handTo(cmd)
	return cmd
}

// CommandContext is Command with a context, as exec.CommandContext: when
// ctx is done before the child exits, the child gets SIGTERM (on Windows,
// where there is none, it is killed), then SIGKILL if it has not exited
// CommandGrace later. The slot stays held until the child is gone. A nil
// ctx is an error in cmd.Err matching ErrInvalid.
func (g *Guard) CommandContext(ctx context.Context, name string, arg ...string) *exec.Cmd {
	if ctx == nil {
		cmd := exec.Command(name, arg...)
		cmd.Err = invalidf("CommandContext needs a non-nil context; use context.Background()")
		return cmd
	}
	cmd := exec.CommandContext(ctx, name, arg...)
	cmd.Cancel = func() error { return terminate(cmd.Process) }
	cmd.WaitDelay = CommandGrace
	g.handTo(cmd)
	return cmd
}

// handTo hands g's slot to cmd, or records why it cannot in cmd.Err. A
// lookup error exec already put there comes first.
func (g *Guard) handTo(cmd *exec.Cmd) {
	if cmd.Err != nil {
		return
	}
	if err := g.Inherit(cmd); err != nil {
		cmd.Err = err
	}
}

// terminate asks p to exit: SIGTERM, or a kill where there is no such
// signal.
func terminate(p *os.Process) error {
	if err := p.Signal(syscall.SIGTERM); err != nil {
		return p.Kill()
	}
	return nil
}
