package slotfile

import (
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

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
type Record struct {
	PID     int
	Host    string
	Since   time.Time
	Start   string // the process's start time as the OS reports it; tells a reused pid
	PidNS   string // the pid namespace the pid belongs to (Linux); "" if unknown
	Command string
	Label   string
	Max     int // the max asked with; 0 if unknown (the reference's records)
}

const (
	// MaxRecordRead bounds what readers take from a slot file, so a huge
	// or hostile file costs status no more than one small read.
	MaxRecordRead = 4096
	// MaxCommandLen and MaxLabelLen bound the free-text fields, keeping
	// every record well inside MaxRecordRead.
	MaxCommandLen = 512
	MaxLabelLen   = 256
)

// Self holds the parts of this process's record that never change.
var Self = sync.OnceValue(func() Record {
	host, _ := os.Hostname()
	return Record{
		PID:     os.Getpid(),
		Host:    CleanValue(host, 255),
		Start:   proc.StartTime(os.Getpid()),
		PidNS:   proc.Namespace(),
		Command: CleanValue(strings.Join(os.Args, " "), MaxCommandLen),
	}
})

// sinceLayout writes since with fixed-width nanoseconds; ParseRecord reads
// it, and the reference's trimmed form, as time.RFC3339Nano.
const sinceLayout = "2006-01-02T15:04:05.000000000Z07:00"

// Marshal renders the record in one buffer, so that it takes one write.
func (r Record) Marshal() []byte {
	b := []byte("pid=" + strconv.Itoa(r.PID) + "\n")
	add := func(key, value string) {
		if value != "" {
			b = append(b, key+"="+value+"\n"...)
		}
	}
	add("host", r.Host)
	if !r.Since.IsZero() {
		add("since", r.Since.UTC().Format(sinceLayout))
	}
	add("start", r.Start)
	add("pidns", r.PidNS)
	add("command", r.Command)
	add("label", r.Label)
	if r.Max > 0 {
		add("max", strconv.Itoa(r.Max))
	}
	return b
}

// ParseRecord reads what it can from a slot file's content: empty, partial
// or garbage content gives a zero or partial record, never an error.
func ParseRecord(data []byte) Record {
	var r Record
	text := map[string]*string{"host": &r.Host, "start": &r.Start, "pidns": &r.PidNS, "command": &r.Command, "label": &r.Label}
	for line := range strings.SplitSeq(string(data), "\n") {
		key, value, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		v := CleanValue(value, MaxCommandLen)
		switch key = strings.TrimSpace(key); key {
		case "pid":
			if pid, err := strconv.Atoi(v); err == nil && pid > 0 {
				r.PID = pid
			}
		case "since":
			// A time Marshal could not write back (UTC year not 0..9999): drop it.
			if t, err := time.Parse(time.RFC3339Nano, v); err == nil && t.UTC().Year() >= 0 && t.UTC().Year() <= 9999 {
				r.Since = t
			}
		case "max":
			if n, err := strconv.Atoi(v); err == nil && n > 0 && n <= MaxSlots {
				r.Max = n
			}
		default:
			if p := text[key]; p != nil {
				*p = v
			}
		}
	}
	return r
}

// ReadRecord reads at most MaxRecordRead bytes of the slot file at path. It
// never follows a symlink and never blocks on a FIFO planted there.
func ReadRecord(path string) (Record, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|filelock.NoFollow, 0)
	if err != nil {
		return Record{}, err
	}
	defer f.Close()
	return ReadRecordFrom(f)
}

// ReadRecordFrom reads the record at the start of f, as ReadRecord does.
func ReadRecordFrom(f *os.File) (Record, error) {
	buf := make([]byte, MaxRecordRead)
	n, err := f.ReadAt(buf, 0)
	if err != nil && err != io.EOF {
		return Record{}, err
	}
	return ParseRecord(buf[:n]), nil
}

// CleanValue makes s one safe line of a record (textsafe.Clean), <= max bytes.
func CleanValue(s string, max int) string {
	if s = textsafe.Clean(s); len(s) > max {
		s = strings.ToValidUTF8(s[:max], "") // drops a rune cut in two
	}
	return strings.TrimSpace(s)
}
