package llmslots

import (
	"time"

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
	switch k {
	case RateLimited:
		return "rate limited"
	case UsageLimit:
		return "usage limit"
	}
	return "unknown limit"
}

// A Limit is a provider's rate or usage limit, as DetectLimit finds it in
// an LLM CLI's output.
type Limit struct {
	Kind       LimitKind
	RetryAfter time.Duration // RateLimited: the provider's hint; 0 if none
	ResetAt    time.Time     // UsageLimit: when the cap resets; zero if not said
	Line       string        // the line of output that said so
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
