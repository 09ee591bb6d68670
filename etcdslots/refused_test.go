//go:build unix

package etcdslots_test

import (
	"context"
	"crypto/tls"
	"errors"
	"testing"
	"time"

	"github.com/llmslots/llmslots"
	"github.com/llmslots/llmslots/etcdslots"
	"github.com/llmslots/llmslots/etcdslots/internal/etcdtest"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// TestTLSMismatch: a client that speaks TLS to a plaintext member gets
// ErrUnavailable within the wait, never a grant.
func TestTLSMismatch(t *testing.T) {
	addr := sharedMember(t)
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   []string{"https://" + addr},
		TLS:         &tls.Config{ServerName: "etcd.example"},
		DialTimeout: time.Second,
		Logger:      zap.NewNop(),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	p, err := etcdslots.NewPool(cli, poolName(t))
	if err != nil {
		t.Fatal(err)
	}
	const wait = 1500 * time.Millisecond
	start := time.Now()
	g, err := p.Acquire(1, wait)
	took := time.Since(start)
	if g != nil || !errors.Is(err, etcdslots.ErrUnavailable) {
		t.Fatalf("got %v, %v; want ErrUnavailable", g, err)
	}
	if took > wait+500*time.Millisecond {
		t.Errorf("error after %v, wait %v", took, wait)
	}
	t.Logf("error after %v: %v", took.Round(time.Millisecond), err)
}

// TestAuthRefused: against a cluster with authentication on, a client
// without credentials is refused at once (not after the wait, not as
// busy), and wrong credentials fail when the client is made.
func TestAuthRefused(t *testing.T) {
	c := etcdtest.NewCluster(t.TempDir(), 1)[0]
	e, err := c.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	admin := newClient(t, c.ClientAddr())
	ctx := context.Background()
	if _, err := admin.UserAdd(ctx, "root", "secret"); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.UserGrantRole(ctx, "root", "root"); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.AuthEnable(ctx); err != nil {
		t.Fatal(err)
	}

	anon := newClient(t, c.ClientAddr())
	p, err := etcdslots.NewPool(anon, poolName(t))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	g, err := p.Acquire(1, 5*time.Second)
	took := time.Since(start)
	if g != nil || err == nil || errors.Is(err, llmslots.ErrBusy) || errors.Is(err, etcdslots.ErrUnavailable) {
		t.Fatalf("no credentials: got %v, %v; want the cluster's refusal", g, err)
	}
	if took > time.Second {
		t.Errorf("refusal took %v", took)
	}
	t.Logf("no credentials: refused after %v: %v", took.Round(time.Millisecond), err)

	_, err = clientv3.New(clientv3.Config{Endpoints: []string{"http://" + c.ClientAddr()}, Username: "root", Password: "wrong", DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err == nil {
		t.Fatal("wrong password: the client was made")
	}
	t.Logf("wrong password: %v", err)

	good, err := clientv3.New(clientv3.Config{Endpoints: []string{"http://" + c.ClientAddr()}, Username: "root", Password: "secret", DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer good.Close()
	p, err = etcdslots.NewPool(good, poolName(t))
	if err != nil {
		t.Fatal(err)
	}
	g, err = p.Acquire(1, 5*time.Second)
	if err != nil {
		t.Fatalf("right password: %v", err)
	}
	g.Release()
}
