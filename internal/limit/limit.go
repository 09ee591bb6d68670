// Package limit recognises, in the output of an LLM CLI (codex exec, claude -p), the provider's
// message that the account hit a rate limit or a usage cap, and when to try again. Only the shapes
// the CLIs print count: their exact wordings at the start of a line, after the CLI's decorations
// ("ERROR:", "⎿", a timestamp), and JSON error objects with a type or code; the same words in code,
// diffs, logs, prose or a ``` fenced block do not. The package imports time/tzdata (about 410 KB
// of binary) so that "resets 5pm (Europe/Berlin)" resolves on hosts without zoneinfo.
package limit

import (
	"bytes"
	"cmp"
	"encoding/json"
	"regexp"
	"strconv"
	"strings"
	"time"
	_ "time/tzdata"
)

// Kind of limit a provider reported.
type Kind int

// The kinds, in rank: a usage limit outranks a rate limit.
const (
	RateLimited Kind = iota + 1 // a burst/rate 429: "fewer at once", retry after a hint
	UsageLimit                  // a usage cap: "nobody until the reset"
)

// Found is the limit a provider reported.
type Found struct {
	Kind       Kind
	RetryAfter time.Duration // RateLimited: the provider's hint, 0 if none
	ResetAt    time.Time     // UsageLimit: when the cap resets; zero if unknown
	Line       string        // the (trimmed, at most ~300 bytes) line that said so
}

// Only the tail of the output is read: the CLIs print these messages last. A hint or reset
// further off than horizon is a misreading (no known cap lasts a month), and is dropped.
const window, horizon = 64 << 10, 60 * 24 * time.Hour

// lead is what may precede a message on its line: the CLIs' glyphs, a bracketed timestamp or
// tag, and their own error labels; not quotes, code, other words, or "+"/"-" diff marks.
const lead = `(?i)^[\s■🖐⚠️✗✖●⎿└│▌•⏺·∙]*(?:\[[^\]]{1,40}\]:?\s*)?(?:(?:error|fatal error|stream error|` +
	`stream disconnected before completion|error running remote compact task|remote compact error)\s*:\s*|` +
	`reconnecting\.{3}\s*\d+/\d+\s*\()*`

var (
	usageRe = regexp.MustCompile(lead + `(?:you[’']ve hit your usage limit|your workspace is out of credits|quota exceeded\. check your plan|` +
		`(?:insufficient quota: )?you exceeded your current quota|insufficient quota\. please check|you hit your spend cap|` +
		`claude ai usage limit reached\||claude usage limit reached\.|you[’']ve hit your (?:\w+ )?limit\s*[·∙•]|` +
		`you[’']re out of (?:extra )?usage\s*[·∙•]|(?:[\w-]+ ){0,2}limit reached\s*[·∙•–-]\s*resets|` +
		`(?:your )?credit balance is too low|you have reached your specified api usage limits)`)
	rateRe = regexp.MustCompile(lead + `(?:exceeded retry limit, last status: 429|unexpected status 429 too many requests|` +
		`rate limit reached for (?:\S+ in )?organization |rate limit is exceeded\.|api error(?::\s*|\s*\()(?:429\s*\{|request rejected \(429\)|rate limit reached))`)
	jsonLead = regexp.MustCompile(lead + `(?:api error:?\s*\(?\d{3}\s*|unexpected status \d{3}[a-z ]*:\s*)?$`) // before a body
	ansiRe   = regexp.MustCompile(`\x1b(?:\[[0-9;?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)?)`)
)

// Detect finds the provider's rate- or usage-limit message in a CLI's output (stdout+stderr).
// now resolves relative times ("in 2 days 1 hour") and absolute clock times without a date;
// loc is the zone of clock times printed without one (the machine's local zone, time.Local).
//
// Of several signals a usage limit outranks a rate limit (a cap stops everyone, whatever the
// rate), and otherwise the last one wins (the latest word). A reset already past is reported as
// unknown, zero ResetAt: the provider has just refused, so the cap evidently has not reset.
func Detect(output []byte, now time.Time, loc *time.Location) (Found, bool) {
	if cut := len(output) - window; cut > 0 { // and from the first whole line on
		output = output[cut+bytes.IndexByte(output[cut:], '\n')+1:]
	}
	best, beforeFence, inFence, hunk := Found{}, Found{}, false, false
	for _, line := range strings.FieldsFunc(string(output), func(r rune) bool { return r == '\n' || r == '\r' }) {
		// A diff's hunk is quoted material: its context lines begin with a space, as an indented message.
		if hunk = strings.HasPrefix(line, "@@ ") || hunk && strings.IndexByte(" +-\\", line[0]) >= 0; hunk {
			continue
		}
		if strings.Contains(line, "\x1b") {
			line = ansiRe.ReplaceAllString(line, "")
		}
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "```") {
			// A closed block is quoted material: forget what it held. An unclosed one (cut
			// off, or the window began inside it) is kept.
			if inFence {
				best = beforeFence
			}
			beforeFence, inFence = best, !inFence
		} else if !hinted(line) {
			continue // a quick way past ordinary output
		} else if f := classify(line, now, loc); f.Kind != 0 && f.Kind >= best.Kind {
			f.Line = strings.ToValidUTF8(line[:min(len(line), 300)], "\uFFFD")
			best = f
		}
	}
	return best, best.Kind != 0
}

// hinted reports whether s has a word every message has.
func hinted(s string) bool {
	s = strings.ToLower(s)
	return strings.Contains(s, "limit") || strings.Contains(s, "429") || strings.Contains(s, "quota") ||
		strings.Contains(s, "credit") || strings.Contains(s, "usage") || strings.Contains(s, "spend cap")
}

// body is a JSON line or error object: codex exec --json's error and turn.failed, claude -p
// --output-format json's result, OpenAI's and ChatGPT's {"error":{}}, Anthropic's {"type":"error"}.
type body struct {
	Type, Subtype, Code, Message, Result string
	IsError                              bool    `json:"is_error"`
	Status                               int     `json:"error_status"` // claude's api_retry
	ResetsAt                             float64 `json:"resets_at"`
	ResetsIn                             float64 `json:"resets_in_seconds"`
	Error                                *body
}

// classify reads a line, or the message a JSON line carries: the limit it reports, Line unset.
func classify(s string, now time.Time, loc *time.Location) Found {
	var e body
	if i := strings.IndexByte(s, '{'); i >= 0 && jsonLead.MatchString(s[:i]) {
		// A field of another type (a numeric code) is skipped; a broken value leaves e empty.
		_ = json.NewDecoder(strings.NewReader(s[i:])).Decode(&e)
	}
	a := cmp.Or(e.Error, new(body))
	switch {
	case e.Type == "system" && e.Subtype == "api_retry" && e.Status == 429: // a 529 is overload
		return Found{Kind: RateLimited}
	case e.Type == "result" && e.IsError:
		return classify(e.Result, now, loc)
	case e.Error == nil && e.Type == "error":
		return classify(e.Message, now, loc)
	case a.Type == "usage_limit_reached":
		at := now.Add(seconds(a.ResetsIn))
		if a.ResetsAt > 0 {
			at = time.Unix(int64(min(a.ResetsAt, 1e11)), 0) // clamped, so it cannot overflow
		}
		return Found{Kind: UsageLimit, ResetAt: sane(at, now)}
	case a.Type == "insufficient_quota" || a.Code == "insufficient_quota":
		return Found{Kind: UsageLimit}
	case a.Type == "rate_limit_error" || a.Code == "rate_limit_exceeded" || rateRe.MatchString(s):
		return Found{Kind: RateLimited, RetryAfter: seconds(relative(s))} // s: Claude's "· Retrying in 5 seconds…"
	case usageRe.MatchString(s):
		return Found{Kind: UsageLimit, ResetAt: resetAt(s, now, loc)}
	case a.Message != "":
		// turn.failed, and Anthropic's invalid_request_error, say it in words. overloaded_error is
		// the provider's capacity, not this account's limit: fewer runs here would not help.
		return classify(a.Message, now, loc)
	}
	return Found{}
}

var (
	// Claude's "Claude AI usage limit reached|1755615600": a Unix epoch.
	epochRe = regexp.MustCompile(`(?i)usage limit reached\|(\d{1,13})\b`)
	// "try again in 4 days 6 hours", "in 1m30s", "Retrying in 5 seconds"; not codex's own back-off
	// "retrying 1/5 in 200ms". partRe reads each part.
	relRe  = regexp.MustCompile(`(?i)\b(?:try again|retrying|resets?) in\s+((?:\d{1,15}(?:\.\d{1,9})?\s*[a-z]+[\s,]*(?:and\s+)?)+)`)
	partRe = regexp.MustCompile(`(?i)(\d+(?:\.\d+)?)\s*(ms|mil|mo|[smhdw])`)
	// "try again at Sep 3rd, 2025 8:19 PM", "resets Apr 10 at 7am (Europe/Paris)", "regain access on
	// 2026-04-01 at 00:00 UTC". Groups: 1-3 month day year, 4-6 ISO date, 7-9 hour minute a/p, 10-11 zone.
	absRe = regexp.MustCompile(`(?i)\b(?:try again at|resets?(?: at| on)?|regain access on)\s+` +
		`(?:(jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?\s+(\d{1,2})(?:st|nd|rd|th)?(?:,?\s+(\d{4}))?` +
		`|(\d{4})-(\d{2})-(\d{2}))?(?:,?\s+(?:at\s+)?)?(?:(2[0-3]|[01]?\d)(?::([0-5]\d))?(?:\s*([ap])\.?m\b\.?)?)?` +
		`(?:\s*\(([a-z_]+(?:/[a-z0-9_+-]+)*)\)|\s+(utc|gmt)\b)?`)
)

// dayRe finds a weekday before a reset's time: "resets Fri 9am" is the next Friday's 9 am.
var dayRe = regexp.MustCompile(`(?i)\bresets?\s+(sun|mon|tue|wed|thu|fri|sat)[a-z]*\.?,?\s+`)

// units is the seconds in a unit of a relative time, as partRe names it.
var units = map[string]float64{"ms": 1e-3, "mil": 1e-3, "mo": 30 * 86400, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}

// resetAt is when a usage limit line says the cap resets; zero if unsaid, absurd or past.
func resetAt(s string, now time.Time, loc *time.Location) time.Time {
	var t time.Time
	if m := epochRe.FindStringSubmatch(s); m != nil {
		n, _ := strconv.ParseInt(m[1], 10, 64)
		t = time.Unix(n, 0)
		if n > 1e11 { // milliseconds
			t = time.UnixMilli(n)
		}
	} else if d := seconds(relative(s)); d > 0 {
		t = now.Add(d)
	} else if m := absRe.FindStringSubmatch(dayRe.ReplaceAllString(s, "resets ")); m != nil {
		t = resolve(m, now, loc)
		for w := dayRe.FindStringSubmatch(s); w != nil && !t.IsZero() && m[1]+m[4] == "" &&
			t.Weekday() != time.Weekday(strings.Index("sunmontuewedthufrisat", strings.ToLower(w[1]))/3); {
			t = t.AddDate(0, 0, 1)
		}
	}
	return sane(t, now)
}

// relative sums the first relative time in s, in seconds; 0 if none. Unknown units count nothing.
func relative(s string) float64 {
	total := 0.0
	if m := relRe.FindStringSubmatch(s); m != nil {
		for _, p := range partRe.FindAllStringSubmatch(m[1], 8) {
			n, _ := strconv.ParseFloat(p[1], 64)
			total += n * units[strings.ToLower(p[2])]
		}
	}
	return total
}

// seconds is a wait of sec seconds; 0 if not positive or beyond the horizon (no overflow).
func seconds(sec float64) time.Duration {
	if sec <= 0 || sec > horizon.Seconds() {
		return 0
	}
	return time.Duration(sec * float64(time.Second))
}

// sane drops a reset not after now (the message or the provider's clock is stale) or too far.
func sane(t, now time.Time) time.Time {
	if !t.After(now) || t.After(now.Add(horizon)) {
		return time.Time{}
	}
	return t
}

// resolve turns an absRe match into a time, zero if none. A clock time without a date is its next
// occurrence after now; a date without a year is in now's year, or the next if over half a year
// past ("Jan 2" read in December). The zone is the one in parentheses if known, else UTC if said, else loc.
func resolve(m []string, now time.Time, loc *time.Location) time.Time {
	zone, err := time.LoadLocation(m[10]) // "" is UTC
	if err != nil || m[10] == "" && m[11] == "" {
		zone = cmp.Or(loc, time.Local) // a nil loc is the local zone
	}
	hour, minute := atoi(m[7]), atoi(m[8])
	if m[9] != "" { // a 12-hour clock: 12am is 0:00, 12pm is noon
		hour %= 12
	}
	if strings.EqualFold(m[9], "p") {
		hour += 12
	}
	y, mon, d := now.In(zone).Date()
	switch {
	case m[4] != "":
		y, mon, d = atoi(m[4]), time.Month(atoi(m[5])), atoi(m[6])
	case m[1] != "":
		mon = time.Month(strings.Index("janfebmaraprmayjunjulaugsepoctnovdec", strings.ToLower(m[1][:3]))/3 + 1)
		y, d = cmp.Or(atoi(m[3]), y), atoi(m[2])
	case m[8] == "" && m[9] == "": // no date, and no clock time either: "reset (every 5h)", "resets 5"
		return time.Time{}
	}
	t := time.Date(y, mon, d, hour, minute, 0, 0, zone)
	switch {
	case m[1] == "" && m[4] == "" && !t.After(now):
		t = t.AddDate(0, 0, 1)
	case m[1] != "" && m[3] == "" && now.Sub(t) > 180*24*time.Hour:
		t = t.AddDate(1, 0, 0)
	}
	return t
}

// atoi reads the digits a regexp group matched (at most four); 0 for none.
func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}
