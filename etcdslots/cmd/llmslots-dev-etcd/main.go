// Command llmslots-dev-etcd starts a one-member etcd on this machine, for
// trying the cluster pool (llmslots-etcd, llmslots --etcd, package
// etcdslots) without a cluster. It is not for production: one member, no
// TLS, no authentication, its data in a temporary directory that is
// removed when it stops (SIGINT or SIGTERM; a SIGKILL leaves the directory
// behind in the system's temporary directory).
//
//	go run github.com/llmslots/llmslots/etcdslots/cmd/llmslots-dev-etcd@latest
//
// It prints the endpoint to export as LLMSLOTS_ETCD, and serves until
// stopped. --listen HOST:PORT chooses the client address (default
// 127.0.0.1:2379).
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/signal"
	"syscall"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
)

const name = "llmslots-dev-etcd"

func main() {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	os.Exit(serve(os.Args[1:], sigs, os.Stdout, os.Stderr))
}

// serve runs the member until a signal arrives on sigs; it returns the
// exit status.
func serve(args []string, sigs <-chan os.Signal, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:2379", "serve clients at `HOST:PORT`")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 64
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "%s: unexpected argument %q\n", name, fs.Arg(0))
		return 64
	}
	client, err := url.Parse("http://" + *listen)
	if err != nil || client.Port() == "" {
		fmt.Fprintf(stderr, "%s: --listen wants HOST:PORT, got %q\n", name, *listen)
		return 64
	}
	// Fail early with a message that names the address: embed's own error
	// for a port in use is buried in its start-up.
	ln, err := net.Listen("tcp", client.Host)
	if err != nil {
		fmt.Fprintf(stderr, "%s: cannot serve at %s (%v); is an etcd running there already? choose another address with --listen 127.0.0.1:PORT\n", name, client.Host, err)
		return 1
	}
	ln.Close()
	peer, err := freeLoopback()
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return 1
	}
	dir, err := os.MkdirTemp("", name+"-")
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return 1
	}

	cfg := embed.NewConfig()
	cfg.Name = "dev"
	cfg.Dir = dir
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
	cfg.ListenClientUrls = []url.URL{*client}
	cfg.AdvertiseClientUrls = cfg.ListenClientUrls
	cfg.ListenPeerUrls = []url.URL{*peer}
	cfg.AdvertisePeerUrls = cfg.ListenPeerUrls
	cfg.ListenMetricsUrls = nil
	cfg.InitialCluster = "dev=" + peer.String()
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		os.RemoveAll(dir)
		fmt.Fprintf(stderr, "%s: starting etcd: %v\n", name, err)
		return 1
	}
	code, why := 0, ""
	select {
	case <-e.Server.ReadyNotify():
		fmt.Fprintf(stderr, "%s: a one-member etcd for trying the cluster pool, NOT FOR PRODUCTION (no TLS, no authentication, one member)\n", name)
		fmt.Fprintf(stderr, "%s: data in %s (removed when this stops: Ctrl-C or SIGTERM)\n", name, dir)
		fmt.Fprintf(stdout, "export LLMSLOTS_ETCD=%s\n", client)
		select {
		case s := <-sigs:
			why = s.String()
		case err := <-e.Err():
			code, why = 1, fmt.Sprintf("etcd failed: %v", err)
		}
	case err := <-e.Err():
		code, why = 1, fmt.Sprintf("etcd failed while starting: %v", err)
	case <-time.After(60 * time.Second):
		code, why = 1, "etcd not ready after 60s"
	case s := <-sigs:
		why = s.String() + " while starting"
	}
	// Close once only: a second Close of an embed.Etcd can block.
	e.Close()
	if err := os.RemoveAll(dir); err != nil {
		fmt.Fprintf(stderr, "%s: %s; stopped, but removing %s: %v\n", name, why, dir, err)
		return 1
	}
	fmt.Fprintf(stderr, "%s: %s; stopped, %s removed\n", name, why, dir)
	return code
}

// freeLoopback returns a loopback URL nobody listens on now, for the
// member's peer port, which no one else uses.
func freeLoopback() (*url.URL, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	defer ln.Close()
	return url.Parse("http://" + ln.Addr().String())
}
