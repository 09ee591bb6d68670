package llmslots

import (
	"bytes"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/llmslots/llmslots/internal/filelock"
	"github.com/llmslots/llmslots/internal/proc"
	"github.com/llmslots/llmslots/internal/textsafe"
)

// A slot file holds its holder's record: the first line is "pid=<pid>", the
// reference's format, so its readers keep working on a shared directory;
// key=value lines follow. The record is informational: the lock, never the
// record, decides whether a slot is held.
//
//	pid=4242
//	host=build-7
//	since=2026-11-26T11:28:40.123456789Z
//	start=1234567
//	pidns=4026531836
//	command=/usr/bin/agent --task review
//	label=codex review
//	max=4
type record struct {
	PID     int
	Host    string
	Since   time.Time
	Start   string // the process's start time as the OS reports it; tells a reused pid
	PidNS   string // the pid namespace the pid belongs to (Linux); "" if unknown
	Command string
	Label   string
	// Max is the max its holder or waiter asked with; 0 if unknown (the
	// reference's records, and older ones, have none).
	Max int
}

const (
	// maxRecordRead bounds what readers take from a slot file, so a huge
	// or hostile file costs status no more than one small read.
	maxRecordRead = 4096
	// maxCommandLen and maxLabelLen bound the free-text fields, keeping
	// every record well inside maxRecordRead.
	maxCommandLen = 512
	maxLabelLen   = 256
)

// self holds the parts of this process's record that never change.
var self = sync.OnceValue(func() record {
	host, _ := os.Hostname()
	return record{
		PID:     os.Getpid(),
		Host:    cleanValue(host, 255),
		Start:   proc.StartTime(os.Getpid()),
		PidNS:   proc.Namespace(),
		Command: cleanValue(strings.Join(os.Args, " "), maxCommandLen),
	}
})

// newRecord is this process's record for a slot (or ticket) of p taken at
// since by a caller that asked with max (0: unknown): the one place a
// record is made.
func (p *Pool) newRecord(since time.Time, max int) record {
	rec := self()
	rec.Since = since
	rec.Label = p.label
	rec.Max = max
	return rec
}

// sinceLayout is RFC 3339 with all nine digits of the fraction, so that
// every record a process writes for a pool has the same length and a
// spare's record is rewritten in place (see spare_unix.go). Readers parse
// it, and the reference's trimmed form, as time.RFC3339Nano.
const sinceLayout = "2006-01-02T15:04:05.000000000Z07:00"

// marshal renders the record in the file format, in one buffer so that it
// reaches the file in one write.
func (r record) marshal() []byte {
	b := make([]byte, 0, 128+len(r.Command)+len(r.Label))
	b = append(b, "pid="...)
	b = strconv.AppendInt(b, int64(r.PID), 10)
	b = appendField(b, "host", r.Host)
	if !r.Since.IsZero() {
		b = append(b, "\nsince="...)
		b = r.Since.UTC().AppendFormat(b, sinceLayout)
	}
	b = appendField(b, "start", r.Start)
	b = appendField(b, "pidns", r.PidNS)
	b = appendField(b, "command", r.Command)
	b = appendField(b, "label", r.Label)
	if r.Max > 0 {
		b = append(b, "\nmax="...)
		b = strconv.AppendInt(b, int64(r.Max), 10)
	}
	return append(b, '\n')
}

func appendField(b []byte, key, value string) []byte {
	if value == "" {
		return b
	}
	b = append(b, '\n')
	b = append(b, key...)
	b = append(b, '=')
	return append(b, value...)
}

// parseRecord reads what it can from a slot file's content. Empty, partial
// and garbage content give a zero or partial record, never an error: a
// holder may die between creating and writing its file, and other tools may
// share the directory.
func parseRecord(data []byte) record {
	var r record
	for len(data) > 0 {
		var line []byte
		line, data, _ = bytes.Cut(data, []byte{'\n'})
		key, value, ok := bytes.Cut(line, []byte{'='})
		if !ok {
			continue
		}
		v := cleanValue(string(value), maxCommandLen)
		switch string(bytes.TrimSpace(key)) {
		case "pid":
			if pid, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && pid > 0 {
				r.PID = pid
			}
		case "host":
			r.Host = v
		case "since":
			// A time marshal could not write back (its UTC year outside
			// 0..9999) is no holder's: drop it.
			if t, err := time.Parse(time.RFC3339Nano, v); err == nil && t.UTC().Year() >= 0 && t.UTC().Year() <= 9999 {
				r.Since = t
			}
		case "start":
			r.Start = v
		case "pidns":
			r.PidNS = v
		case "command":
			r.Command = v
		case "label":
			r.Label = v
		case "max":
			if n, err := strconv.Atoi(v); err == nil && n > 0 && n <= MaxSlots {
				r.Max = n
			}
		}
	}
	return r
}

// readRecord reads at most maxRecordRead bytes of the slot file at path. It
// never follows a symlink and never blocks on a FIFO planted there.
func readRecord(path string) (record, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|filelock.NoFollow, 0)
	if err != nil {
		return record{}, err
	}
	defer f.Close()
	return readRecordFrom(f)
}

func readRecordFrom(f *os.File) (record, error) {
	buf := make([]byte, maxRecordRead)
	n, err := f.ReadAt(buf, 0)
	if err != nil && err != io.EOF {
		return record{}, err
	}
	return parseRecord(buf[:n]), nil
}

// cleanValue makes s safe for one line of a record: valid UTF-8, control
// characters (isControl's, bidirectional ones included) turned to spaces, at most max bytes, cut on a rune boundary.
func cleanValue(s string, max int) string {
	s = strings.ToValidUTF8(s, "?")
	s = strings.Map(func(r rune) rune {
		if isControl(r) {
			return ' '
		}
		return r
	}, s)
	if len(s) > max {
		cut := max
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut]
	}
	return strings.TrimSpace(s)
}

// isControl: see textsafe.IsControl.
func isControl(r rune) bool { return textsafe.IsControl(r) }

// checkLabel validates a label given by the caller; unlike the command line,
// which is cleaned silently, a bad label is the caller's to fix.
func checkLabel(label string) error {
	if len(label) > maxLabelLen {
		return invalidf("label must be at most %d bytes, got %d", maxLabelLen, len(label))
	}
	if !utf8.ValidString(label) || strings.ContainsFunc(label, isControl) {
		return invalidf("label must be UTF-8 text without control characters, got %q", label)
	}
	return nil
}
