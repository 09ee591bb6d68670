package limit

import (
	"testing"
	"time"
)

// TestReviewTwentyFourHourClock: an hour 20-23 without am/pm ("resets
// 21:00", "try again at 20:19") was read as 2 o'clock with no minutes, so
// the reset was lost: the hour's alternatives tried [01]?\d first.
func TestReviewTwentyFourHourClock(t *testing.T) {
	now := time.Date(2026, 12, 7, 18, 0, 0, 0, time.UTC)
	for line, want := range map[string]time.Time{
		"You've hit your usage limit. Try again at 20:19.":    time.Date(2026, 12, 7, 20, 19, 0, 0, time.UTC),
		"You've hit your limit · resets 21:00 (UTC)":          time.Date(2026, 12, 7, 21, 0, 0, 0, time.UTC),
		"You've hit your limit · resets 17:30":                time.Date(2026, 12, 8, 17, 30, 0, 0, time.UTC),
		"You've hit your limit · resets Dec 9 at 23:45 (UTC)": time.Date(2026, 12, 9, 23, 45, 0, 0, time.UTC),
	} {
		f, ok := Detect([]byte(line), now, time.UTC)
		if !ok || f.Kind != UsageLimit || !f.ResetAt.Equal(want) {
			t.Errorf("%q: %v %+v, want a usage limit resetting at %v", line, ok, f, want)
		}
	}
}

// TestReviewCodexWordingsMissed: wordings codex-rs/protocol/src/error.rs
// prints for a usage limit (UsageLimitReachedError, rate_limit_reached_type)
// and the typographic apostrophe some codex builds and the ChatGPT backend
// use; none was recognised.
func TestReviewCodexWordingsMissed(t *testing.T) {
	now := time.Date(2026, 12, 7, 18, 0, 0, 0, time.UTC)
	for _, line := range []string{
		"ERROR: Your workspace is out of credits. Add credits to continue.",
		"ERROR: Your workspace is out of credits. Ask your workspace owner to refill in order to continue.",
		"ERROR: You’ve hit your usage limit. Try again at 8:19 PM.",
	} {
		if f, ok := Detect([]byte(line), now, time.UTC); !ok || f.Kind != UsageLimit {
			t.Errorf("%q: %v %+v, want a usage limit", line, ok, f)
		}
	}
}
