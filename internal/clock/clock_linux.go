package clock

import (
	"sync"
	"time"
)

// Monotonic reads the machine-wide monotonic clock, which every process
// on the host shares and no one can set: it orders arrivals in the queue.
// In a Linux time namespace the namespace's offset is taken out, so that
// the reading is the host's.
//
// The clock is read with a system call once per process; after that,
// readings are that one plus the time Go's own monotonic clock has run
// since. On Linux Go's clock is CLOCK_MONOTONIC itself, read through the
// vDSO without a system call: the same clock, so the two never drift.
func Monotonic() int64 {
	b := base()
	if !b.ok {
		return time.Now().UnixNano()
	}
	return b.host + int64(time.Since(b.at))
}

// origin pairs a reading of the host's clock (host) with the instant of Go's
// clock (at) it was taken at.
type origin struct {
	host int64
	at   time.Time
	ok   bool
}

// base takes the origin. The system call falls somewhere between two
// readings of Go's clock; it is put at their midpoint, so the error is at
// most half their distance. Of a few tries the closest pair is kept (a
// preemption between the readings would spread them), so that arrivals in
// different processes, a microsecond apart, still sort as they happened.
var base = sync.OnceValue(func() origin {
	var best origin
	bestGap := time.Duration(-1)
	for range 5 {
		before := time.Now()
		host, ok := hostMonotonic()
		gap := time.Since(before)
		if !ok {
			return origin{}
		}
		if bestGap < 0 || gap < bestGap {
			best, bestGap = origin{host: host, at: before.Add(gap / 2), ok: true}, gap
		}
	}
	return best
})
