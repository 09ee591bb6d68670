// Package slotfile is the protocol on disk: the names of slot and ticket
// files, the record each holds, how a file is made, probed, reclaimed and
// removed, and the checks a pool directory must pass.
package slotfile

import (
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
)

// MaxSlots is the largest max a pool may have.
const MaxSlots = 1024

// Names in a pool directory. The queue directory and the hidden files start
// with a dot, which no pool name may.
const (
	QueueDir      = ".queue"
	TicketPrefix  = "t-"    // a ticket in line
	DraftPrefix   = "n-"    // a ticket being made: locked and recorded, then renamed
	NewbornPrefix = ".new-" // a group pool's file being made, before its link or rename
)

// SlotName is the file name of slot id.
func SlotName(id int) string { return "slot-" + strconv.Itoa(id) + ".lock" }

// SlotPath is the path of slot id's file in dir.
func SlotPath(dir string, id int) string { return filepath.Join(dir, SlotName(id)) }

// ParseSlotName returns the id of a slot file name, or -1 for any other
// name ("slot-01.lock" too: ids are canonical decimals below MaxSlots).
func ParseSlotName(name string) int {
	id, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(name, "slot-"), ".lock"))
	if err != nil || id < 0 || id >= MaxSlots || SlotName(id) != name {
		return -1
	}
	return id
}

// pidInName returns the pid in a ticket name "t-<arrival>-<pid>-<seq>", or 0.
func pidInName(name string) int {
	parts := strings.Split(name, "-")
	if len(parts) != 4 || parts[0]+"-" != TicketPrefix && parts[0]+"-" != DraftPrefix {
		return 0
	}
	pid, _ := strconv.Atoi(parts[2])
	return max(pid, 0)
}

// Describe names what a file that is not regular is, for messages.
func Describe(fi fs.FileInfo) string {
	switch t := fi.Mode().Type(); {
	case t&fs.ModeSymlink != 0:
		return "a symbolic link"
	case t&fs.ModeDir != 0:
		return "a directory"
	case t&fs.ModeNamedPipe != 0:
		return "a named pipe"
	case t&fs.ModeSocket != 0:
		return "a socket"
	case t&fs.ModeDevice != 0:
		return "a device"
	}
	return "not a regular file"
}
