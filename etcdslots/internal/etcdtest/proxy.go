//go:build unix

// Package etcdtest starts real etcd members and real processes for the
// tests and the benchmark: members through etcd's embed package (in this
// process or in a child that can be SIGKILLed), "hosts" as child processes
// that each reach the cluster through their own TCP proxy, which a test
// can cut. No mock stands in for etcd anywhere.
package etcdtest

import (
	"io"
	"net"
	"sync"
	"time"
)

// A Proxy forwards TCP connections from its own loopback port to the
// first upstream that answers, trying them in turn from the one after the
// last it used, so a host behind it follows a cluster whose members die.
// Cut makes a partition: it closes every connection and refuses new ones
// until Restore.
type Proxy struct {
	ln        net.Listener
	upstreams []string

	mu    sync.Mutex
	conns map[net.Conn]struct{}
	cut   bool
	next  int
}

// NewProxy listens on 127.0.0.1 and forwards to upstreams (host:port).
func NewProxy(upstreams ...string) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{ln: ln, upstreams: upstreams, conns: map[net.Conn]struct{}{}}
	go p.serve()
	return p, nil
}

// Addr returns the proxy's address, host:port.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// URL returns the proxy as an etcd endpoint.
func (p *Proxy) URL() string { return "http://" + p.Addr() }

func (p *Proxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		go p.forward(c)
	}
}

func (p *Proxy) forward(c net.Conn) {
	p.mu.Lock()
	if p.cut {
		p.mu.Unlock()
		c.Close()
		return
	}
	start := p.next
	p.mu.Unlock()
	var up net.Conn
	for i := range p.upstreams {
		j := (start + i) % len(p.upstreams)
		u, err := net.DialTimeout("tcp", p.upstreams[j], 300*time.Millisecond)
		if err == nil {
			up = u
			p.mu.Lock()
			p.next = j
			p.mu.Unlock()
			break
		}
	}
	if up == nil {
		p.mu.Lock()
		p.next = start + 1
		p.mu.Unlock()
		c.Close()
		return
	}
	p.mu.Lock()
	if p.cut {
		p.mu.Unlock()
		c.Close()
		up.Close()
		return
	}
	p.conns[c] = struct{}{}
	p.conns[up] = struct{}{}
	p.mu.Unlock()
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		done <- struct{}{}
	}
	go pipe(up, c)
	go pipe(c, up)
	<-done
	c.Close()
	up.Close()
	p.mu.Lock()
	delete(p.conns, c)
	delete(p.conns, up)
	p.mu.Unlock()
}

// Cut closes every connection and refuses new ones until Restore.
func (p *Proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = true
	for c := range p.conns {
		c.Close()
	}
}

// Restore accepts connections again.
func (p *Proxy) Restore() {
	p.mu.Lock()
	p.cut = false
	p.mu.Unlock()
}

// Close stops the proxy and closes its connections.
func (p *Proxy) Close() {
	p.Cut()
	p.ln.Close()
}
