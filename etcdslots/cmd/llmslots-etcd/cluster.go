package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	shared "github.com/llmslots/llmslots/internal/cli"

	"github.com/llmslots/llmslots"
	"github.com/llmslots/llmslots/etcdslots"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Environment variables the command reads.
const (
	envEndpoints = "LLMSLOTS_ETCD"
	envPassword  = "LLMSLOTS_ETCD_PASSWORD"
)

// clusterFlags choose the cluster and the pool in it, for both
// subcommands.
type clusterFlags struct {
	endpoints string
	pool      string
	prefix    string
	max       int
	ttl       time.Duration
	margin    time.Duration // the loss margin; 0: etcdslots' default
	cacert    string
	cert      string
	key       string
	user      string
}

// register defines the flags on fs; --max only with a maxUsage (pause and
// resume have no max).
func (cf *clusterFlags) register(fs *flag.FlagSet, maxUsage string) {
	fs.StringVar(&cf.endpoints, "etcd", "", "the cluster's client `ENDPOINTS`, comma-separated (host:port, http://host:port or https://host:port); default: $"+envEndpoints)
	fs.StringVar(&cf.pool, "pool", "default", "the cluster pool's `NAME` ([a-z0-9._-], as the host's pools); every host that shares the limit uses the same name")
	fs.StringVar(&cf.prefix, "prefix", etcdslots.DefaultPrefix, "the etcd key `PREFIX` the pools live under")
	if maxUsage != "" {
		fs.IntVar(&cf.max, "max", 0, fmt.Sprintf("%s (1..%d); required: a cluster's limit cannot be guessed from one host", maxUsage, llmslots.MaxSlots))
	}
	fs.StringVar(&cf.cacert, "cacert", "", "verify the cluster's TLS certificates with the CA bundle in `FILE` (turns TLS on)")
	fs.StringVar(&cf.cert, "cert", "", "present the client certificate in `FILE` (with --key; turns TLS on)")
	fs.StringVar(&cf.key, "key", "", "the client certificate's private key `FILE`")
	fs.StringVar(&cf.user, "user", "", "authenticate as `NAME`, with the password in $"+envPassword)
}

// check validates the flags and fills in the endpoints from the
// environment; a non-empty answer is a usage error.
func (cf *clusterFlags) check(fs *flag.FlagSet) string {
	if !shared.IsSet(fs, "etcd") {
		cf.endpoints = os.Getenv(envEndpoints)
	}
	if len(cf.list()) == 0 {
		return "no cluster: give --etcd ENDPOINTS or set " + envEndpoints
	}
	if fs.Lookup("max") != nil { // pause and resume have none
		if !shared.IsSet(fs, "max") {
			return "--max N is required: every host of a cluster pool must use the same max"
		}
		if cf.max < 1 || cf.max > llmslots.MaxSlots {
			return fmt.Sprintf("--max must be 1..%d, got %d", llmslots.MaxSlots, cf.max)
		}
	}
	if (cf.cert == "") != (cf.key == "") {
		return "--cert and --key go together"
	}
	if cf.user != "" && os.Getenv(envPassword) == "" {
		return "--user needs the password in " + envPassword
	}
	return ""
}

// list returns the endpoints, without empty ones.
func (cf *clusterFlags) list() []string {
	var eps []string
	for _, ep := range strings.Split(cf.endpoints, ",") {
		if ep = strings.TrimSpace(ep); ep != "" {
			eps = append(eps, ep)
		}
	}
	return eps
}

// tlsConfig returns the TLS setup the flags ask for; nil for plain TCP
// (unless an endpoint says https://, which then uses the system's CAs).
func (cf *clusterFlags) tlsConfig() (*tls.Config, error) {
	if cf.cacert == "" && cf.cert == "" {
		return nil, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if cf.cacert != "" {
		pem, err := os.ReadFile(cf.cacert)
		if err != nil {
			return nil, fmt.Errorf("--cacert: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--cacert: no PEM certificate in %s", cf.cacert)
		}
		cfg.RootCAs = pool
	}
	if cf.cert != "" {
		pair, err := tls.LoadX509KeyPair(cf.cert, cf.key)
		if err != nil {
			return nil, fmt.Errorf("--cert/--key: %w", err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg, nil
}

// connect makes the client and the pool. dial bounds how long the client
// may take to authenticate (only --user makes it reach the cluster now).
func (cf *clusterFlags) connect(dial time.Duration, label string) (*clientv3.Client, *etcdslots.Pool, error) {
	tlsCfg, err := cf.tlsConfig()
	if err != nil {
		return nil, nil, err
	}
	cfg := clientv3.Config{
		Endpoints:   cf.list(),
		DialTimeout: dial,
		TLS:         tlsCfg,
		Logger:      zap.NewNop(), // the client's retry warnings would bury the one line that matters
	}
	if cf.user != "" {
		cfg.Username, cfg.Password = cf.user, os.Getenv(envPassword)
	}
	cli, err := clientv3.New(cfg)
	if err != nil {
		if unreachable(err) {
			return nil, nil, fmt.Errorf("%w: the cluster at %s did not answer within %v: %v", etcdslots.ErrUnavailable, cf.endpoints, dial, err)
		}
		return nil, nil, fmt.Errorf("connecting to the cluster at %s: %w", cf.endpoints, err)
	}
	opts := []etcdslots.Option{etcdslots.WithPrefix(cf.prefix)}
	if cf.ttl > 0 {
		opts = append(opts, etcdslots.WithTTL(cf.ttl))
	}
	if cf.margin > 0 {
		opts = append(opts, etcdslots.WithLossMargin(cf.margin))
	}
	if label != "" {
		opts = append(opts, etcdslots.WithLabel(label))
	}
	p, err := etcdslots.NewPool(cli, cf.pool, opts...)
	if err != nil {
		cli.Close()
		return nil, nil, err
	}
	return cli, p, nil
}

// unreachable reports whether err means the cluster did not answer, as
// opposed to answering with a refusal.
func unreachable(err error) bool {
	if errors.Is(err, etcdslots.ErrUnavailable) || errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	if s, ok := status.FromError(err); ok {
		return s.Code() == codes.Unavailable || s.Code() == codes.DeadlineExceeded
	}
	return false
}

// dialFor is how long connect may take for a caller that waits up to wait
// (negative: without limit): at least a second, at most ten.
func dialFor(wait time.Duration) time.Duration {
	if wait < 0 {
		return 10 * time.Second
	}
	return min(max(wait, time.Second), 10*time.Second)
}
