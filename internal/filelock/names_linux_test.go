package filelock

import (
	"encoding/binary"
	"errors"
	"testing"

	"golang.org/x/sys/unix"
)

// dirent is one linux_dirent64 record of name, padded to 8 bytes.
func dirent(ino uint64, name string) []byte {
	n := (direntName + len(name) + 1 + 7) &^ 7
	b := make([]byte, n)
	binary.NativeEndian.PutUint64(b, ino)
	binary.NativeEndian.PutUint16(b[direntReclen:], uint16(n))
	copy(b[direntName:], name)
	return b
}

// A record that claims more than the buffer holds, or less than its own
// header, is an error, never a read past the buffer or an endless loop.
func TestEachDirentRejectsBadRecords(t *testing.T) {
	good := append(append(dirent(1, "."), dirent(2, "..")...), append(dirent(0, "gone"), dirent(3, "t-1")...)...)
	var got []string
	if err := eachDirent(good, func(n []byte) { got = append(got, string(n)) }); err != nil || len(got) != 1 || got[0] != "t-1" {
		t.Fatalf("good records: %q, %v; want [t-1] (no . or .., no entry without an inode)", got, err)
	}
	long := dirent(3, "t-1")
	binary.NativeEndian.PutUint16(long[direntReclen:], uint16(len(long)+8))
	short := dirent(3, "t-1")
	binary.NativeEndian.PutUint16(short[direntReclen:], 0)
	for name, b := range map[string][]byte{"too long": long, "zero length": short, "cut": good[:5]} {
		if err := eachDirent(b, func([]byte) {}); !errors.Is(err, unix.EBADMSG) {
			t.Errorf("%s: %v, want EBADMSG", name, err)
		}
	}
}
