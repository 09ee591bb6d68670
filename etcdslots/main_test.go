//go:build unix

package etcdslots_test

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/llmslots/llmslots/etcdslots"
	"github.com/llmslots/llmslots/etcdslots/internal/etcdtest"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
)

func TestMain(m *testing.M) {
	if etcdtest.RunChild() {
		return
	}
	code := m.Run()
	shared.mu.Lock()
	if shared.e != nil {
		shared.e.Close()
		os.RemoveAll(shared.dir)
	}
	shared.mu.Unlock()
	os.Exit(code)
}

// shared is one in-process member for the tests that need no SIGKILL of
// etcd; each test uses its own pool names.
var shared struct {
	mu   sync.Mutex
	e    *embed.Etcd
	dir  string
	addr string
}

// sharedMember returns the shared member's client address, starting it
// on first use.
func sharedMember(t testing.TB) string {
	t.Helper()
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.e == nil {
		dir, err := os.MkdirTemp("", "etcdslots-shared-")
		if err != nil {
			t.Fatal(err)
		}
		c := etcdtest.NewCluster(dir, 1)[0]
		start := time.Now()
		e, err := c.Start()
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("shared etcd member ready in %v", time.Since(start).Round(time.Millisecond))
		shared.e, shared.dir, shared.addr = e, dir, c.ClientAddr()
	}
	return shared.addr
}

func newClient(t testing.TB, endpoints ...string) *clientv3.Client {
	t.Helper()
	urls := make([]string, len(endpoints))
	for i, ep := range endpoints {
		urls[i] = "http://" + ep
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: urls, DialTimeout: 2 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

func newPool(t testing.TB, cli *clientv3.Client, opts ...etcdslots.Option) *etcdslots.Pool {
	t.Helper()
	p, err := etcdslots.NewPool(cli, fmt.Sprintf("%s-%d", sanitize(t.Name()), time.Now().UnixNano()), opts...)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// sanitize makes a test's name a pool name: lowercase, [a-z0-9-].
func sanitize(s string) string {
	b := []byte(strings.ToLower(s))
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			b[i] = '-'
		}
	}
	if len(b) > 40 {
		b = b[:40]
	}
	return string(b)
}
