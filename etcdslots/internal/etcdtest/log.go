//go:build unix

package etcdtest

import "go.uber.org/zap"

// quietLogger keeps the etcd client's retry warnings out of the hosts'
// logs, which the tests parse.
func quietLogger() *zap.Logger { return zap.NewNop() }
