package llmslots

import (
	"cmp"
	"time"

	"github.com/llmslots/llmslots/internal/limit"
	"github.com/llmslots/llmslots/internal/throttle"
)

// A LimitKind tells apart the two signals a provider gives.
type LimitKind int

const (
	// RateLimited is a burst limit, an HTTP 429 ("exceeded retry limit,
	// last status: 429 Too Many Requests", Anthropic's rate_limit_error):
	// fewer at once, and again after the hint.
	RateLimited LimitKind = iota + 1
	// UsageLimit is a usage cap ("You've hit your usage limit ... try
	// again in 4 days 6 hours", "Claude AI usage limit reached|1755615600"):
	// nobody until it resets.
	UsageLimit
)

func (k LimitKind) String() string {
	names := map[LimitKind]string{RateLimited: "rate limited", UsageLimit: "usage limit"}
	return cmp.Or(names[k], "unknown limit")
}

// A Limit is a provider's rate or usage limit, as DetectLimit finds it in
// an LLM CLI's output.
type Limit struct {
	Kind       LimitKind
	RetryAfter time.Duration // RateLimited: the provider's hint; 0 if none
	ResetAt    time.Time     // UsageLimit: when the cap resets; zero if not said
	Line       string        // the line of output that said so
}

// DetectLimit finds in output, what an LLM CLI printed (stdout and stderr
// of `codex exec`, `claude -p`), the provider's message that the account
// met a rate limit or a usage cap, with its hint or reset; false if there
// is none. It knows the wordings of the Codex CLI and Claude Code and the
// OpenAI and Anthropic APIs' error bodies as those print them: plain text,
// JSON lines, relative ("try again in 2 days 1 hour") and absolute times
// ("at 8:19 PM", in the local zone; "resets 5pm (America/New_York)", with
// the zone's rules built in), epochs. Only those shapes count, at the
// start of a line: the same words in code, diffs, logs, prose or a fenced
// block (a review of a rate limiter) are no signal. A usage limit
// outranks a rate limit; otherwise the last message wins. Only the last
// 64 KiB of output is read. A reset that is not ahead is reported as
// unknown (zero ResetAt); a provider's overload is no limit of the
// account, and not reported.
func DetectLimit(output []byte) (Limit, bool) {
	f, ok := limit.Detect(output, time.Now(), time.Local)
	if !ok {
		return Limit{}, false
	}
	kind := RateLimited
	if f.Kind == limit.UsageLimit {
		kind = UsageLimit
	}
	return Limit{Kind: kind, RetryAfter: f.RetryAfter, ResetAt: f.ResetAt, Line: f.Line}, true
}

// ReportLimit reports l, met by the work done under this slot, to every
// process of the pool (call it before or after Release):
//   - RateLimited is Throttled(l.RetryAfter): a pause for the hint, and a
//     lower limit.
//   - UsageLimit pauses the pool until l.ResetAt, at most 24 h ahead;
//     without a reset ahead (zero, or past), for the backoff Throttled
//     uses without a hint. The limit is not lowered: a cap says "nobody
//     until then", not "fewer at once". When the pause ends, grants come
//     spaced, as after any pause. Status and the busy error say that the
//     pool waits for a usage limit to reset, until when, and l.Line.
//
// A Limit of any other Kind is reported as RateLimited. On a nil Guard
// ReportLimit does nothing; a failure to record the report is logged.
func (g *Guard) ReportLimit(l Limit) {
	if l.Kind != UsageLimit {
		g.Throttled(l.RetryAfter)
		return
	}
	g.report(time.Until(l.ResetAt), l.Line, throttle.UsageLimited)
}
