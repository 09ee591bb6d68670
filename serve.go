package llmslots

import (
	"strconv"
	"strings"
)

// A release serves the line directly where it can: the releaser renames
// the first waiter's ticket over its own slot file, so the slot never
// frees, and the waiter wakes once, holding it.
//
// Without it a handoff wakes two processes: the head of the line, woken
// by the release to take the slot, and the waiter behind it, woken by the
// head's departure to become head. On a small machine each wake-up of a
// process costs tens of microseconds, most of a contended acquisition.
//
// It works because on Linux a waiter's ticket can be a second name of its
// spare (spare_linux.go): a file already locked and recorded as a slot
// file is. rename(ticket, slot-i) then replaces the releaser's file
// (whose spare keeps its own name and lock) with the waiter's, in one
// atomic step: slot-i is held throughout, first by the releaser, then by
// the waiter, and no other acquirer can take it between. The waiter's
// watch on its own ticket (IN_MOVE_SELF) wakes it; the waiter behind it
// does not watch for that rename, so it sleeps on (it wakes when the slot
// is released or its holder dies, as it watches that file still).
//
// A releaser serves only a ticket that says, in its name, that its waiter
// watches for the rename, and asked for a max above the slot's id, in this
// pid namespace; whose lock is held (its waiter lives) and which is not
// stopped (a waiter stopped by Ctrl-Z must not take a slot it cannot use:
// the release frees the slot instead, and the waiter behind takes it after
// stallAfter, as before). Otherwise, or with a throttle state, the release
// deletes its slot file as before.
//
// Since a waiter may now become first in line without being woken (the
// one ahead was served), every servable waiter watches the pool directory
// for freed slots, not only the head: releases that delete, and holders
// that die. Such events are rare while releases serve the line. One that
// reaches a waiter that is served at the same moment is passed on: the
// served waiter touches its spare (IN_ATTRIB), which wakes the waiter that
// was behind it to look afresh.

// servedMark separates a ticket's name from the suffix that says its
// waiter can be served: -s<max>-<pidns>.
const servedMark = "-s"

// ticketNameLen is the length of ticketName's part of a ticket's name.
const ticketNameLen = 20 + 1 + 10 + 1 + 6

// servedMax returns the max a servable ticket's waiter asked for, and its
// pid namespace; 0 for any other name.
func servedMax(name string) (int, string) {
	name = strings.TrimPrefix(name, ticketPrefix)
	if len(name) <= ticketNameLen || !strings.HasPrefix(name[ticketNameLen:], servedMark) {
		return 0, ""
	}
	maxStr, ns, ok := strings.Cut(name[ticketNameLen+len(servedMark):], "-")
	max, err := strconv.Atoi(maxStr)
	if !ok || err != nil || max < 1 || ns == "" {
		return 0, ""
	}
	return max, ns
}

// servable reports whether a ticket's name says a releaser may serve it.
func servable(name string) bool {
	max, _ := servedMax(name)
	return max > 0
}
