package etcdslots

import (
	"errors"
	"fmt"

	"github.com/llmslots/llmslots"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// ErrUnavailable is matched (errors.Is) by the error returned when the
// cluster did not answer in time: endpoints unreachable, no quorum, a TLS
// handshake that fails. The message names the endpoints and the last error
// the client saw. No slot is held when it is returned.
var ErrUnavailable = errors.New("etcdslots: cluster unavailable")

// ErrLeaseLost is matched (errors.Is) by the error a waiter returns when its
// own lease ended (or may have ended) while it waited, and by Guard.Err once
// Lost is closed. A waiter whose lease ended has lost its place in line.
var ErrLeaseLost = errors.New("etcdslots: lease lost")

// sentinelError carries its own message but matches one or more sentinels,
// so a message stays one sentence instead of "sentinel: detail: detail".
type sentinelError struct {
	msg       string
	sentinels []error
	cause     error
}

func (e *sentinelError) Error() string { return e.msg }

func (e *sentinelError) Is(target error) bool {
	for _, s := range e.sentinels {
		if target == s {
			return true
		}
	}
	return false
}

func (e *sentinelError) Unwrap() error { return e.cause }

func invalidf(format string, args ...any) error {
	return &sentinelError{msg: "etcdslots: " + fmt.Sprintf(format, args...), sentinels: []error{llmslots.ErrInvalid}}
}

// permanent reports whether retrying the request cannot help: the cluster
// answered and refused (bad credentials, no permission, a bad request).
// Everything else (no connection, no leader, a timeout) is retried until
// the caller's deadline.
func permanent(err error) bool {
	var code codes.Code
	var ee rpctypes.EtcdError
	if errors.As(err, &ee) {
		code = ee.Code()
	} else if s, ok := status.FromError(err); ok {
		code = s.Code()
	} else {
		return false
	}
	switch code {
	case codes.InvalidArgument, codes.PermissionDenied, codes.Unauthenticated, codes.FailedPrecondition, codes.OutOfRange:
		return true
	}
	return false
}
