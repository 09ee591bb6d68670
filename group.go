package llmslots

import (
	"os"
	"os/user"
	"strconv"

	"github.com/llmslots/llmslots/internal/perm"
	"github.com/llmslots/llmslots/internal/slotfile"
)

// EnvGroup, when set, makes every pool shared by the members of a Unix
// group, named or numbered (see WithGroup); WithGroup on a pool wins.
const EnvGroup = "LLMSLOTS_GROUP"

// group says who may share a pool: its owner alone, or one Unix group.
type group struct {
	shared bool
	gid    int
}

// WithGroup makes the pool shared by the members of the Unix group gid,
// for agents that run as different users but share one account's rate
// limit. The pool directory must then belong to that group and give it
// full access, others none, with the setgid bit and without the sticky bit
// (mode 2770, which the package creates, under a parent that must exist and
// that the group can reach); the caller must be a member. Slot files are
// made group-readable and -writable. A live holder of another user is never
// taken for dead (its lock decides; kill(pid, 0)'s EPERM means alive).
// Members are trusted with each other's slots: any can delete another's
// slot file. Not available on Windows.
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

// maker is how the pool's files are made: private, or the group's.
func (g group) maker() slotfile.Maker {
	return slotfile.Maker{Shared: g.shared, GID: g.gid}
}
