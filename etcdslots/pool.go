// Package etcdslots is llmslots' "at most max at once" across many hosts:
// the slots live in an etcd cluster that every host reaches, so the limit
// belongs to an account rather than to one machine.
//
//	cli, err := clientv3.New(clientv3.Config{Endpoints: endpoints, DialTimeout: 5 * time.Second})
//	...
//	pool, err := etcdslots.NewPool(cli, "codex")
//	g, err := pool.Acquire(10, time.Minute)
//	if err != nil {
//		return err
//	}
//	defer g.Release()
//	// run codex; stop it when <-g.Lost() fires
//
// # Protocol
//
// Keys live under <prefix>/<name>/ (prefix "llmslots" unless WithPrefix).
// Every acquirer first grants itself a lease of the pool's TTL, which it
// renews every TTL/4, and puts waiters/<lease> under that lease: the key's
// create revision is its place in one line for all hosts (FIFO). A waiter
// with someone ahead of it watches only the key just ahead of it, for its
// deletion, as etcd's Mutex does. The waiter at the head watches
// slots/ for deletions. When one of slots/0000..slots/(max-1) is absent it
// claims it with one transaction, conditioned on its waiter key being its
// own and the slot key being absent: the transaction puts the slot key
// under its lease and deletes its waiter key, which wakes the next waiter.
// So a release or an expiry wakes exactly one process, the one that moves.
//
// A slot key lives as long as its lease: Release revokes the lease, so the
// slot frees at once; a holder or a waiter that dies, hangs or is cut off
// stops renewing, and the server deletes its keys when the lease expires,
// TTL after its last renewal. A key without a lease, which the server
// never deletes, is not one of the protocol's (etcdctl put writes one, and
// make-mirror copies keys without their leases): an acquirer that would
// wait on such a slot or waiter key deletes it, in a transaction that
// checks it still has no lease and has not changed.
//
// # Loss
//
// A holder cannot learn from the server that its lease expired if it cannot
// reach the server. So Guard.Lost closes at a deadline kept by the holder
// itself: the time it sent the last renewal the server acknowledged, plus
// the TTL, minus a margin (WithLossMargin). The server received that
// renewal after it was sent, so it cannot expire the lease before; only the
// rates of the two clocks must agree. etcd's own concurrency.Session
// reports loss only after the client's keepalive deadline, which a holder
// cut off from the cluster was measured to reach after another process had
// been granted its slot (etcd-io/etcd #6127, #10811, #19597). Lost also
// closes when the server says the lease is gone or the slot key is deleted.
//
// A process paused (SIGSTOP, a VM freeze) past its TTL resumes with Lost
// already closed, but may run a few instructions of its work first: no
// signal can stop that, which is what fencing is for. Check Lost before
// starting work, not only while working.
//
// # Fencing
//
// Guard.Token is the etcd revision of the transaction that granted the
// slot: it grows with every grant in the cluster and survives restarts, so
// a resource that remembers the largest token it has seen can refuse a
// stale holder's late writes.
//
// # Throttling
//
// Guard.Throttled, Pool.Pause and Pool.Resume are the host pool's (see
// llmslots.Guard.Throttled), across hosts: one key, <prefix>/<name>/
// throttle/state, holds the policy's state and changes only by
// transactions that compare its mod revision. A pause ends when the server
// deletes throttle/pause, put under a lease whose TTL is the pause: etcd's
// clock, not a host's, ends it, and the reporter need not live. The head
// of the line reads the slots and the throttle at one revision and, when
// the state could refuse the grant, writes the state in the claim's
// transaction, so grants judged from one snapshot serialize and the
// holders never pass the lowered limit. throttle.go says how the
// policy's instants are kept without wall clocks.
//
// # Limits
//
// All callers of a pool must use the same max: a caller with max 3 counts
// only slots 0..2, so callers with max 3 and max 5 together may hold 5. The
// safe deadline assumes the holder's and the server's clocks run at the
// same rate, to within the margin over one TTL; their offsets do not
// matter.
package etcdslots

import (
	"fmt"
	"strings"
	"time"

	"github.com/llmslots/llmslots"
	"github.com/llmslots/llmslots/internal/slotfile"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// DefaultTTL is the lease TTL of a pool made without WithTTL: how long a
// dead holder keeps its slot, at most. etcd servers refuse to go below
// about 2 s (1.5 election timeouts) and round up to whole seconds.
const DefaultTTL = 5 * time.Second

// DefaultPrefix is the key prefix of a pool made without WithPrefix.
const DefaultPrefix = "llmslots"

// minAttempt bounds the requests of an attempt whose caller gave it no
// time (Acquire with wait 0, an AcquireContext whose ctx is done): one
// attempt needs a few round trips, and a cluster that does not answer
// within this is reported unavailable.
const minAttempt = time.Second

// A Pool is a named set of slots in an etcd cluster. It is safe for
// concurrent use; it holds no connection of its own and no state in the
// cluster until Acquire.
type Pool struct {
	cli    *clientv3.Client
	name   string
	prefix string // <prefix>/<name>/
	ttl    time.Duration
	margin time.Duration
	label  string
	seen   thSeen // when this process saw the pause end and the ramp's grants
}

// An Option configures a Pool.
type Option func(*Pool) error

// WithTTL sets the lease TTL (default DefaultTTL): a dead or cut-off
// holder's slot is granted again about TTL after its last renewal. The
// server rounds it up to whole seconds and to its minimum (about 2 s).
// It must be 1s..1h.
func WithTTL(d time.Duration) Option {
	return func(p *Pool) error {
		if d < time.Second || d > time.Hour {
			return invalidf("TTL must be 1s..1h, got %v", d)
		}
		p.ttl = d
		return nil
	}
}

// WithLabel sets the label recorded with this pool's holders and waiters,
// shown by ReadStatus.
func WithLabel(s string) Option {
	return func(p *Pool) error {
		if len(s) > 256 || strings.ContainsAny(s, "\x00\n") {
			return invalidf("label must be at most 256 bytes on one line, got %q", s)
		}
		p.label = s
		return nil
	}
}

// WithPrefix sets the key prefix (default DefaultPrefix), for clusters
// shared with other users. Pools are keys <prefix>/<name>/.
func WithPrefix(s string) Option {
	return func(p *Pool) error {
		if s == "" || strings.HasSuffix(s, "/") || strings.ContainsAny(s, "\x00\n") || len(s) > 256 {
			return invalidf("prefix must be 1..256 bytes, one line, not ending in /, got %q", s)
		}
		p.prefix = s
		return nil
	}
}

// WithLossMargin sets how long before the earliest moment the server could
// expire a holder's lease Lost closes (default TTL/10, at least 100 ms).
// It covers clocks that run at slightly different rates and the delay
// between Lost closing and the caller stopping its work: a caller that
// stops its work with a grace period (SIGTERM, then SIGKILL later) adds
// the whole period to it, as llmslots-etcd run does with --grace, or the
// work may outlive the lease. It must be 10ms..TTL/2.
func WithLossMargin(d time.Duration) Option {
	return func(p *Pool) error {
		if d < 10*time.Millisecond {
			return invalidf("loss margin must be at least 10ms, got %v", d)
		}
		p.margin = d
		return nil
	}
}

// NewPool returns the pool name in the cluster cli talks to. name follows
// the host pools' rule (llmslots.NamedPool): 1-64 characters of
// [a-z0-9._-], lowercase, not starting with a dot. A nil
// cli, a bad name or a bad option gives an error matching
// llmslots.ErrInvalid. It makes no request.
func NewPool(cli *clientv3.Client, name string, opts ...Option) (*Pool, error) {
	if cli == nil {
		return nil, invalidf("NewPool needs an etcd client, got nil")
	}
	if err := checkName(name); err != nil {
		return nil, err
	}
	p := &Pool{cli: cli, name: name, prefix: DefaultPrefix, ttl: DefaultTTL}
	for _, o := range opts {
		if o == nil {
			return nil, invalidf("NewPool got a nil Option")
		}
		if err := o(p); err != nil {
			return nil, err
		}
	}
	if p.margin == 0 {
		p.margin = max(p.ttl/10, 100*time.Millisecond)
	}
	if p.margin > p.ttl/2 {
		return nil, invalidf("loss margin must be at most TTL/2 (%v), got %v", p.ttl/2, p.margin)
	}
	return p, nil
}

// checkName enforces the host pools' name rule (llmslots.NamedPool), so a
// name is good for both: run --local-max holds the host's pool of the same
// name, and a name etcd took but the host refused would fail only there,
// after the cluster slot was taken.
func checkName(name string) error {
	if len(name) < 1 || len(name) > 64 {
		return invalidf("pool name must be 1-64 characters, got %d in %q", len(name), name)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return invalidf("pool name may hold only [a-z0-9._-] (lowercase, as the host's pools), got %q", name)
		}
	}
	if name[0] == '.' {
		return invalidf("pool name must not start with a dot, got %q", name)
	}
	if slotfile.ParseSlotName(name) >= 0 {
		return invalidf("pool name %q is a slot file name, which the host's pools refuse; choose another", name)
	}
	return nil
}

func checkMax(max int) error {
	if max < 1 || max > llmslots.MaxSlots {
		return invalidf("max must be 1..%d, got %d", llmslots.MaxSlots, max)
	}
	return nil
}

// Name returns the pool's name.
func (p *Pool) Name() string { return p.name }

// Dir returns the pool's location as ReadStatus reports it:
// etcd://<prefix>/<name>.
func (p *Pool) Dir() string { return "etcd://" + p.prefix + "/" + p.name }

// TTL returns the lease TTL the pool asks for.
func (p *Pool) TTL() time.Duration { return p.ttl }

func (p *Pool) base() string          { return p.prefix + "/" + p.name + "/" }
func (p *Pool) slotsPrefix() string   { return p.base() + "slots/" }
func (p *Pool) waitersPrefix() string { return p.base() + "waiters/" }

// slotKey names slot id with four digits, so keys sort as ids do.
func (p *Pool) slotKey(id int) string { return fmt.Sprintf("%s%04d", p.slotsPrefix(), id) }

// slotID parses a slot key; -1 if it is not one.
func (p *Pool) slotID(key string) int {
	rest, ok := strings.CutPrefix(key, p.slotsPrefix())
	if !ok || len(rest) != 4 {
		return -1
	}
	id := 0
	for _, c := range rest {
		if c < '0' || c > '9' {
			return -1
		}
		id = id*10 + int(c-'0')
	}
	return id
}

func (p *Pool) waiterKey(lease clientv3.LeaseID) string {
	return fmt.Sprintf("%s%016x", p.waitersPrefix(), int64(lease))
}

func (p *Pool) endpoints() string { return strings.Join(p.cli.Endpoints(), ",") }
