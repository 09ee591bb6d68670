package slotfile

// TestHooks, set by tests only, run inside the windows that races live in,
// so that a test can make the race happen every time instead of rarely.
var TestHooks struct {
	// BeforeLock runs between creating a slot file and locking it: the
	// window of the unlink race (see Take).
	BeforeLock func(path string)
	// ProbeBeforeLock runs in Probe between the look at a file and the
	// lock: the window in which it may be replaced.
	ProbeBeforeLock func(path string)
	// Birth runs as soon as a file is made (kind is "slot" or "ticket").
	Birth func(kind, path string)
}
