//go:build unix

package etcdtest

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
)

// MemberConfig says how to start one etcd member.
type MemberConfig struct {
	Name         string
	Dir          string
	ClientPort   int
	PeerPort     int
	InitialPeers map[string]int // name -> peer port, all members
}

// ClientAddr returns the member's client address, host:port.
func (c MemberConfig) ClientAddr() string { return fmt.Sprintf("127.0.0.1:%d", c.ClientPort) }

// FreePort returns a loopback port nobody listens on now.
func FreePort() int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// NewCluster returns configurations for n members in dirs under root.
func NewCluster(root string, n int) []MemberConfig {
	peers := map[string]int{}
	cfgs := make([]MemberConfig, n)
	for i := range n {
		name := fmt.Sprintf("m%d", i)
		cfgs[i] = MemberConfig{Name: name, Dir: filepath.Join(root, name), ClientPort: FreePort(), PeerPort: FreePort()}
		peers[name] = cfgs[i].PeerPort
	}
	for i := range cfgs {
		cfgs[i].InitialPeers = peers
	}
	return cfgs
}

func u(port int) url.URL {
	x, _ := url.Parse(fmt.Sprintf("http://127.0.0.1:%d", port))
	return *x
}

// Start starts the member in this process and waits until it serves.
func (c MemberConfig) Start() (*embed.Etcd, error) {
	cfg := embed.NewConfig()
	cfg.Name = c.Name
	cfg.Dir = c.Dir
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
	cfg.BcryptCost = 4 // the minimum: a password check under -race stays well under a second
	cfg.ListenClientUrls = []url.URL{u(c.ClientPort)}
	cfg.AdvertiseClientUrls = cfg.ListenClientUrls
	cfg.ListenPeerUrls = []url.URL{u(c.PeerPort)}
	cfg.AdvertisePeerUrls = cfg.ListenPeerUrls
	cfg.ListenMetricsUrls = nil
	var ic []string
	for name, port := range c.InitialPeers {
		ic = append(ic, fmt.Sprintf("%s=http://127.0.0.1:%d", name, port))
	}
	if len(ic) == 0 {
		ic = []string{fmt.Sprintf("%s=http://127.0.0.1:%d", c.Name, c.PeerPort)}
	}
	cfg.InitialCluster = strings.Join(ic, ",")
	cfg.InitialClusterToken = "etcdslots-test"
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return nil, err
	}
	select {
	case <-e.Server.ReadyNotify():
		return e, nil
	case err := <-e.Err():
		e.Close()
		return nil, err
	case <-time.After(30 * time.Second):
		e.Close()
		return nil, fmt.Errorf("etcd member %s not ready after 30s", c.Name)
	}
}

// memberEnv carries a MemberConfig to a child process.
const memberEnv = "ETCDSLOTS_TEST_MEMBER"

// A Process is a member running in a child process.
type Process struct {
	Config MemberConfig
	Cmd    *exec.Cmd
}

// StartProcess runs the member in a child process (this executable
// re-executed; its main must call RunChild first) and waits until it
// serves. It does not wait for the cluster to have a leader.
func (c MemberConfig) StartProcess() (*Process, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	b, _ := json.Marshal(c)
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), memberEnv+"="+string(b))
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(out)
		ok := false
		for sc.Scan() {
			if sc.Text() == "member-ready" && !ok {
				ok = true
				ready <- true
			}
		}
		if !ok {
			ready <- false
		}
	}()
	select {
	case ok := <-ready:
		if !ok {
			_ = cmd.Wait()
			return nil, fmt.Errorf("etcd member %s exited before it was ready", c.Name)
		}
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return nil, fmt.Errorf("etcd member %s not ready after 60s", c.Name)
	}
	return &Process{Config: c, Cmd: cmd}, nil
}

// Kill SIGKILLs the member and reaps it.
func (p *Process) Kill() {
	_ = p.Cmd.Process.Signal(syscall.SIGKILL)
	_ = p.Cmd.Wait()
}

// RunChild runs this process as a helper if the environment says so:
// an etcd member or a host. It returns false in the parent.
func RunChild() bool {
	if v := os.Getenv(memberEnv); v != "" {
		var c MemberConfig
		if err := json.Unmarshal([]byte(v), &c); err != nil {
			fmt.Fprintln(os.Stderr, "bad member config:", err)
			os.Exit(2)
		}
		e, err := c.Start()
		if err != nil {
			fmt.Fprintln(os.Stderr, "member:", err)
			os.Exit(1)
		}
		fmt.Println("member-ready")
		err = <-e.Err()
		fmt.Fprintln(os.Stderr, "member stopped:", err)
		os.Exit(1)
	}
	if v := os.Getenv(hostEnv); v != "" {
		runHost(v)
		os.Exit(0)
	}
	return false
}
