//go:build unix

package etcdslots_test

import (
	"context"
	"log"
	"os/exec"
	"syscall"
	"time"

	"github.com/llmslots/llmslots"
	"github.com/llmslots/llmslots/etcdslots"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// At most 10 codex processes across every host that reaches the cluster;
// the child is stopped when the slot may be lost.
func Example() {
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{"http://etcd-1:2379", "http://etcd-2:2379", "http://etcd-3:2379"}, DialTimeout: 5 * time.Second})
	if err != nil {
		log.Fatal(err)
	}
	defer cli.Close()
	pool, err := etcdslots.NewPool(cli, "codex", etcdslots.WithLabel("nightly review"))
	if err != nil {
		log.Fatal(err)
	}
	g, err := pool.Acquire(10, 10*time.Minute)
	if err != nil {
		log.Fatal(err) // ErrBusy, ErrUnavailable, or the cluster's refusal
	}
	defer g.Release()

	cmd := exec.Command("codex", "exec", "review the diff")
	if err := cmd.Start(); err != nil {
		log.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err = <-done:
	case <-g.Lost():
		// Lost closes before anyone else can be granted the slot.
		_ = cmd.Process.Signal(syscall.SIGTERM)
		log.Printf("slot lost (%v); stopped codex", g.Err())
		err = <-done
	}
	if err != nil {
		log.Print(err)
	}
}

// At most 4 codex processes on this host and 10 across all hosts: the
// local slot is taken first, so no process holds a cluster slot while it
// waits for its own host.
func ExampleAcquireBoth() {
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{"http://etcd-1:2379"}, DialTimeout: 5 * time.Second})
	if err != nil {
		log.Fatal(err)
	}
	defer cli.Close()
	cluster, err := etcdslots.NewPool(cli, "codex")
	if err != nil {
		log.Fatal(err)
	}
	local, err := llmslots.NamedPool("codex")
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	b, err := etcdslots.AcquireBoth(ctx, local, 4, cluster, 10)
	if err != nil {
		log.Fatal(err)
	}
	defer b.Release()
	// run codex; stop it when <-b.Lost() fires
}
