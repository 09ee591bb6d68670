package etcdslots

import (
	"encoding/json"
	"os"
	"strings"
	"time"
)

// record is the value of a holder's or a waiter's key: who it is, for
// ReadStatus and for people reading the keys with etcdctl.
type record struct {
	PID     int       `json:"pid"`
	Host    string    `json:"host"`
	Label   string    `json:"label,omitempty"`
	Command string    `json:"command,omitempty"`
	Since   time.Time `json:"since"`
}

func newRecord(label string, since time.Time) []byte {
	host, _ := os.Hostname()
	cmd := strings.Join(os.Args, " ")
	if len(cmd) > 512 {
		cmd = cmd[:512]
	}
	b, _ := json.Marshal(record{PID: os.Getpid(), Host: host, Label: label, Command: cmd, Since: since.UTC()})
	return b
}

// parseRecord reads a record; a value no etcdslots process wrote reads as
// an empty record, so ReadStatus still lists the key.
func parseRecord(b []byte) record {
	var r record
	_ = json.Unmarshal(b, &r)
	return r
}
