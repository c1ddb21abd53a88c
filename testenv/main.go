// Command nodewright-testenv runs a real Kubernetes control plane for tests and the demo: an embedded
// etcd and kube-apiserver in one process, on 127.0.0.1, with no kubelet, scheduler or
// controller-manager — the shape envtest gives Go operators.
//
// It owns one state directory. On first start it creates a CA, the serving and client certificates,
// the service-account key pair and free ports, and records them there; a later start on the same
// directory reuses all of them, so a test can kill the process and start it again to simulate an API
// server restart with the same address, credentials and stored objects.
//
// When the server answers /readyz it writes an admin kubeconfig and prints one line on stdout:
//
//	ready kubeconfig=<path> server=https://127.0.0.1:<port>
//
// It exits on SIGINT/SIGTERM, when its parent process dies, and (with --exit-on-stdin-close) when its
// standard input closes, so that a test process that crashes or is killed leaves nothing behind.
package main

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
	"k8s.io/component-base/cli"
	"k8s.io/kubernetes/cmd/kube-apiserver/app"
)

// ports records the listening ports of one state directory, so that a restart binds the same ones.
type ports struct {
	APIServer  int `json:"apiserver"`
	EtcdClient int `json:"etcdClient"`
	EtcdPeer   int `json:"etcdPeer"`
}

type options struct {
	dir               string
	kubeconfig        string
	apiserverPort     int
	exitOnStdinClose  bool
	removeDirOnExit   bool
	verbosity         int
	readyTimeout      time.Duration
	extraAPIServerArg multiFlag
	serviceAccounts   bool
}

type multiFlag []string

func (m *multiFlag) String() string     { return fmt.Sprint(*m) }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

func main() {
	var o options
	flag.StringVar(&o.dir, "dir", "", "state directory: certificates, ports, etcd data, kubeconfig (required; reused across restarts)")
	flag.StringVar(&o.kubeconfig, "kubeconfig", "", "where to write the admin kubeconfig (default DIR/kubeconfig)")
	flag.IntVar(&o.apiserverPort, "port", 0, "kube-apiserver secure port on 127.0.0.1 (0: a free port, remembered in DIR)")
	flag.BoolVar(&o.exitOnStdinClose, "exit-on-stdin-close", false, "shut down when standard input reaches end of file (the parent's pipe closed)")
	flag.BoolVar(&o.removeDirOnExit, "remove-dir-when-orphaned", false, "delete DIR when shutting down because the parent died or standard input closed (not on a signal, so that a stopped control plane can be started again on the same DIR)")
	flag.IntVar(&o.verbosity, "v", 0, "kube-apiserver log verbosity")
	flag.DurationVar(&o.readyTimeout, "ready-timeout", 120*time.Second, "give up if /readyz does not answer ok within this time")
	flag.BoolVar(&o.serviceAccounts, "service-account-admission", false, "keep the ServiceAccount admission plugin on (pods get their tokens); only when a kube-controller-manager runs and creates each namespace's default ServiceAccount")
	flag.Var(&o.extraAPIServerArg, "apiserver-arg", "an extra kube-apiserver flag, e.g. --apiserver-arg=--audit-log-path=/tmp/a.log (repeatable)")
	flag.Parse()
	if o.dir == "" {
		fmt.Fprintln(os.Stderr, "nodewright-testenv: --dir is required")
		os.Exit(2)
	}
	if err := run(o); err != nil {
		fmt.Fprintf(os.Stderr, "nodewright-testenv: %v\n", err)
		os.Exit(1)
	}
}

func run(o options) error {
	dir, err := filepath.Abs(o.dir)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	if o.removeDirOnExit {
		defer func() {
			if orphaned.Load() {
				os.RemoveAll(dir)
			}
		}()
	}
	if o.kubeconfig == "" {
		o.kubeconfig = filepath.Join(dir, "kubeconfig")
	}

	p, err := loadOrPickPorts(dir, o.apiserverPort)
	if err != nil {
		return fmt.Errorf("ports: %w", err)
	}
	pki, err := loadOrCreatePKI(filepath.Join(dir, "pki"))
	if err != nil {
		return fmt.Errorf("certificates: %w", err)
	}

	etcd, err := startEtcd(filepath.Join(dir, "etcd"), p)
	if err != nil {
		return fmt.Errorf("etcd: %w", err)
	}
	defer etcd.Close()

	watchParent(o.exitOnStdinClose)

	server := fmt.Sprintf("https://127.0.0.1:%d", p.APIServer)
	go func() {
		if err := waitReady(server, pki, o.readyTimeout); err != nil {
			fmt.Fprintf(os.Stderr, "nodewright-testenv: %v\n", err)
			selfTerminate()
			return
		}
		if err := writeKubeconfig(o.kubeconfig, server, pki); err != nil {
			fmt.Fprintf(os.Stderr, "nodewright-testenv: kubeconfig: %v\n", err)
			selfTerminate()
			return
		}
		fmt.Printf("ready kubeconfig=%s server=%s\n", o.kubeconfig, server)
	}()

	cmd := app.NewAPIServerCommand()
	cmd.SetArgs(append(apiserverArgs(p, pki, o.verbosity, o.serviceAccounts), o.extraAPIServerArg...))
	if code := cli.Run(cmd); code != 0 {
		return fmt.Errorf("kube-apiserver exited with code %d", code)
	}
	return nil
}

// apiserverArgs are the kube-apiserver flags. Each one is here for a reason written beside it; the
// rest are kube-apiserver's defaults, so that tests see the behaviour a real cluster has.
func apiserverArgs(p ports, pki *pkiFiles, verbosity int, serviceAccounts bool) []string {
	disabledAdmission := "ServiceAccount"
	if serviceAccounts {
		// A kube-controller-manager runs (the real single-node cluster): it creates the default
		// ServiceAccounts, so the plugin can stay on and mount the pods' tokens.
		disabledAdmission = ""
	}
	return []string{
		// Storage: the embedded etcd below, over plain HTTP on loopback.
		fmt.Sprintf("--etcd-servers=http://127.0.0.1:%d", p.EtcdClient),
		// Serve only on loopback, on the port remembered in the state directory.
		"--bind-address=127.0.0.1",
		fmt.Sprintf("--secure-port=%d", p.APIServer),
		"--advertise-address=127.0.0.1",
		// The endpoint reconciler refuses a loopback advertise address, and nothing in a test reaches
		// the API server through the in-cluster "kubernetes" Service, so it is turned off.
		"--endpoint-reconciler-type=none",
		// Serving certificate from our own CA, so clients verify the server instead of skipping TLS checks.
		"--tls-cert-file=" + pki.servingCert,
		"--tls-private-key-file=" + pki.servingKey,
		// Client-certificate authentication: the admin kubeconfig carries a certificate from this CA.
		"--client-ca-file=" + pki.caCert,
		// RBAC as in production, so tests can prove what a role may and may not do
		// (system:masters, the admin's group, is allowed everything).
		"--authorization-mode=RBAC",
		// Service-account tokens (TokenRequest) work, so tests can act as a service account under a Role.
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file=" + pki.saPublic,
		"--service-account-signing-key-file=" + pki.saPrivate,
		"--service-cluster-ip-range=10.0.0.0/24",
		// The legacy DaemonSet is privileged and uses hostNetwork/hostPID; allow such pods to be created.
		"--allow-privileged=true",
		// Unless --service-account-admission says a controller-manager runs, nobody creates the
		// "default" ServiceAccount a namespace needs before pods can be admitted by this plugin.
		"--disable-admission-plugins=" + disabledAdmission,
		// The apiserver authenticates to kubelets (real or stand-in) with this client certificate.
		// There is deliberately no --kubelet-certificate-authority: as with kubeadm's defaults, the
		// apiserver then does not verify kubelet serving certificates, and the stand-in kubelet
		// (src/kubelet.rs) serves a self-signed one. --kubelet-preferred-address-types keeps its
		// default (Hostname first); stand-in Nodes report only an InternalIP, 127.0.0.1.
		"--kubelet-client-certificate=" + pki.kubeletClientCert,
		"--kubelet-client-key=" + pki.kubeletClientKey,
		// Profiling endpoints are not needed and cost memory.
		"--profiling=false",
		fmt.Sprintf("-v=%d", verbosity),
	}
}

func startEtcd(dataDir string, p ports) (*embed.Etcd, error) {
	cfg := embed.NewConfig()
	cfg.Name = "testenv"
	cfg.Dir = dataDir
	client := url.URL{Scheme: "http", Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(p.EtcdClient))}
	peer := url.URL{Scheme: "http", Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(p.EtcdPeer))}
	cfg.ListenClientUrls = []url.URL{client}
	cfg.AdvertiseClientUrls = []url.URL{client}
	cfg.ListenPeerUrls = []url.URL{peer}
	cfg.AdvertisePeerUrls = []url.URL{peer}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	cfg.LogLevel = "error"
	cfg.LogOutputs = []string{"stderr"}
	// Test data is disposable; skipping fsync makes every write several times faster.
	cfg.UnsafeNoFsync = true
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
	case <-time.After(60 * time.Second):
		e.Close()
		return nil, errors.New("not ready within 60s")
	}
}

func loadOrPickPorts(dir string, apiserverPort int) (ports, error) {
	path := filepath.Join(dir, "ports.json")
	var p ports
	if b, err := os.ReadFile(path); err == nil {
		if err := json.Unmarshal(b, &p); err != nil {
			return p, fmt.Errorf("%s: %w", path, err)
		}
		return p, nil
	}
	var err error
	if apiserverPort != 0 {
		p.APIServer = apiserverPort
	} else if p.APIServer, err = freePort(); err != nil {
		return p, err
	}
	if p.EtcdClient, err = freePort(); err != nil {
		return p, err
	}
	if p.EtcdPeer, err = freePort(); err != nil {
		return p, err
	}
	b, err := json.Marshal(p)
	if err != nil {
		return p, err
	}
	return p, os.WriteFile(path, b, 0o600)
}

// freePort asks the kernel for an unused loopback port. Another process can take it before we bind
// it; the caller then fails to start and the test harness retries with a new directory.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func waitReady(server string, pki *pkiFiles, timeout time.Duration) error {
	cert, err := tls.LoadX509KeyPair(pki.adminCert, pki.adminKey)
	if err != nil {
		return err
	}
	caPEM, err := os.ReadFile(pki.caCert)
	if err != nil {
		return err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	client := &http.Client{
		Timeout:   5 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}}},
	}
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		resp, err := client.Get(server + "/readyz")
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("kube-apiserver at %s not ready within %s", server, timeout)
}

// orphaned is set when the process shuts down because whoever started it is gone.
var orphaned atomic.Bool

// watchParent shuts the process down when the process that started it goes away: its parent PID
// changes when the parent dies, and its standard input closes when the parent's end of the pipe does.
func watchParent(onStdinClose bool) {
	parent := os.Getppid()
	go func() {
		for range time.Tick(250 * time.Millisecond) {
			if os.Getppid() != parent {
				fmt.Fprintln(os.Stderr, "nodewright-testenv: parent process exited; shutting down")
				orphaned.Store(true)
				selfTerminate()
				return
			}
		}
	}()
	if onStdinClose {
		go func() {
			_, _ = io.Copy(io.Discard, bufio.NewReader(os.Stdin))
			fmt.Fprintln(os.Stderr, "nodewright-testenv: standard input closed; shutting down")
			orphaned.Store(true)
			selfTerminate()
		}()
	}
}

// selfTerminate asks kube-apiserver's own signal handler for a graceful shutdown, and exits hard if
// that has not finished in time.
// It acts once: kube-apiserver's handler treats a second signal as a demand to exit at once, which
// would skip the cleanup of the state directory.
func selfTerminate() {
	terminateOnce.Do(func() {
		_ = syscall.Kill(os.Getpid(), syscall.SIGTERM)
		go func() {
			time.Sleep(15 * time.Second)
			os.Exit(1)
		}()
	})
}

var terminateOnce sync.Once
