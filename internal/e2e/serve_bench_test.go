package e2e

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wharf-project/wharf/internal/api"
	"github.com/wharf-project/wharf/internal/publish"
)

func freePort(t testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startPS enrolls and starts `wharf ps serve` and returns it with its URL.
func startPS(t testing.TB, env []string, name, installDir string, extra ...string) (*proc, string) {
	t.Helper()
	var tok api.EnrollToken
	mustJSON(t, env, &tok, "ns", "enroll-token")
	addr := freePort(t)
	args := append([]string{"ps", "serve", "--enroll", tok.Token, "--install-dir", installDir, "--addr", addr, "--name", name}, extra...)
	nsURL := ""
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "WHARF_NS="); ok {
			nsURL = v
		}
	}
	p, _ := start(t, nil, nil, append(args, "--ns", nsURL)...)
	deadline := time.Now().Add(60 * time.Second)
	for {
		var list api.ServerList
		mustJSON(t, env, &list, "server", "ls")
		for _, s := range list.Servers {
			if s.Name == name && !s.LastContact.IsZero() {
				return p, "http://" + addr
			}
		}
		select {
		case <-p.done:
			t.Fatalf("wharf ps serve %s exited: %v", name, p.err)
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("package server %s did not enroll and poll within 60s", name)
		}
	}
}

// waitPackageReady polls `wharf server show` until the server reports the
// package ready.
func waitPackageReady(t testing.TB, env []string, server, id string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		r := run(t, env, "server", "show", server, "--json")
		var s api.Server
		if r.code == 0 && json.Unmarshal([]byte(r.stdout), &s) == nil {
			for _, st := range s.Packages {
				if st.PackageID == id && st.State == api.StateReady {
					return
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("package %s not ready on %s after %s:\n%s%s", id, server, timeout, r.stdout, r.stderr)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// wrkRun runs wrk against url and returns requests/s and bytes/s.
func wrkRun(b *testing.B, threads, conns int, dur time.Duration, url string) (float64, float64) {
	out, err := exec.Command("wrk", "-t", strconv.Itoa(threads), "-c", strconv.Itoa(conns), "-d", dur.String(), url).CombinedOutput()
	if err != nil {
		b.Fatalf("wrk %s: %v\n%s", url, err, out)
	}
	rps := regexp.MustCompile(`Requests/sec:\s+([\d.]+)`).FindSubmatch(out)
	tps := regexp.MustCompile(`Transfer/sec:\s+([\d.]+)([KMG]?B)`).FindSubmatch(out)
	if rps == nil || tps == nil || bytes.Contains(out, []byte("Non-2xx")) || bytes.Contains(out, []byte("Socket errors")) {
		b.Fatalf("wrk %s: unexpected output (errors or non-2xx answers):\n%s", url, out)
	}
	r, _ := strconv.ParseFloat(string(rps[1]), 64)
	v, _ := strconv.ParseFloat(string(tps[1]), 64)
	v *= map[string]float64{"B": 1, "KB": 1 << 10, "MB": 1 << 20, "GB": 1 << 30}[string(tps[2])]
	return r, v
}

// BenchmarkServeVsNginx measures `wharf ps serve` against nginx serving the
// same package files on the same machine, in the same run: requests per
// second for a 4 KiB file and MB/s for a 100 MiB file, and their ratios
// (wharf / nginx). It needs nginx and wrk (make bench installs them).
func BenchmarkServeVsNginx(b *testing.B) {
	for _, tool := range []string{"nginx", "wrk"} {
		if _, err := exec.LookPath(tool); err != nil {
			b.Skipf("%s not installed (make bench installs it): %v", tool, err)
		}
	}
	dur := 8 * time.Second
	if v := os.Getenv("WHARF_BENCH_SECONDS"); v != "" {
		n, _ := strconv.Atoi(v)
		dur = time.Duration(n) * time.Second
	}
	dir := b.TempDir()
	_, _, env := startNS(b, filepath.Join(dir, "ns"), "")
	_, psURL := startPS(b, env, "bench-ps", filepath.Join(dir, "ps"))

	certFile, keyFile := selfSigned(b, dir)
	tlsAddr := freePort(b)
	startPSOn(b, env, "bench-tls", filepath.Join(dir, "ps-tls"), tlsAddr, "--tls-cert", certFile, "--tls-key", keyFile)
	tlsURL := "https://" + tlsAddr

	tree := filepath.Join(dir, "tree")
	os.MkdirAll(filepath.Join(tree, "small"), 0o755)
	os.MkdirAll(filepath.Join(tree, "medium"), 0o755)
	small := make([]byte, 4096)
	for i := 0; i < 100; i++ {
		rand.Read(small)
		os.WriteFile(filepath.Join(tree, "small", fmt.Sprintf("f%03d.bin", i)), small, 0o644)
	}
	medium := make([]byte, 64<<10)
	for i := 0; i < 100; i++ {
		rand.Read(medium)
		os.WriteFile(filepath.Join(tree, "medium", fmt.Sprintf("f%03d.bin", i)), medium, 0o644)
	}
	big := make([]byte, 100<<20)
	rand.Read(big)
	os.WriteFile(filepath.Join(tree, "big.bin"), big, 0o644)
	var res publish.Result
	mustJSON(b, env, &res, "package", "add", tree, "--name", "bench", "--version", "1", "--public")
	id := res.Package.ID
	waitPackageReady(b, env, "bench-ps", id, 2*time.Minute)
	waitPackageReady(b, env, "bench-tls", id, 2*time.Minute)

	// One package of 1 GiB for `wharf get` against curl, on bench-ps only.
	gigTree := filepath.Join(dir, "gig")
	os.MkdirAll(gigTree, 0o755)
	gf, err := os.Create(filepath.Join(gigTree, "gig.bin"))
	if err != nil {
		b.Fatal(err)
	}
	chunk := make([]byte, 4<<20)
	for written := 0; written < 1<<30; written += len(chunk) {
		rand.Read(chunk)
		gf.Write(chunk)
	}
	gf.Close()
	var gig publish.Result
	mustJSON(b, env, &gig, "package", "add", gigTree, "--name", "bench-gig", "--version", "1", "--servers", "bench-ps", "--public")
	waitPackageReady(b, env, "bench-ps", gig.Package.ID, 5*time.Minute)

	nginxAddr, nginxTLSAddr := freePort(b), freePort(b)
	conf := filepath.Join(dir, "nginx.conf")
	os.WriteFile(conf, []byte(fmt.Sprintf(`user root;
worker_processes 2;
daemon off;
pid %s/nginx.pid;
error_log stderr warn;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 100000;
  client_body_temp_path %[1]s/tmp; proxy_temp_path %[1]s/tmp; fastcgi_temp_path %[1]s/tmp;
  uwsgi_temp_path %[1]s/tmp; scgi_temp_path %[1]s/tmp;
  types { application/octet-stream bin; }
  server {
    listen %s;
    location /packages/ { alias "%s/"; autoindex off; }
  }
  server {
    listen %s ssl;
    ssl_certificate %s;
    ssl_certificate_key %s;
    location /packages/ { alias "%[3]s/"; autoindex off; }
  }
}
`, dir, nginxAddr, filepath.Join(dir, "ps", "Package Delivery"), nginxTLSAddr, certFile, keyFile)), 0o644)
	os.MkdirAll(filepath.Join(dir, "tmp"), 0o755)
	nginx := exec.Command("nginx", "-c", conf, "-p", dir)
	nginx.Stderr = os.Stderr
	if err := nginx.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() { nginx.Process.Signal(syscall.SIGTERM); nginx.Wait() }() // SIGTERM: the master stops its workers
	time.Sleep(500 * time.Millisecond)

	path := "/packages/" + id + "/small/f007.bin"
	mediumPath := "/packages/" + id + "/medium/f007.bin"
	bigPath := "/packages/" + id + "/big.bin"
	gigURL := psURL + "/packages/" + gig.Package.ID + "/gig.bin"
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		wharfRPS, _ := wrkRun(b, 2, 32, dur, psURL+path)
		nginxRPS, _ := wrkRun(b, 2, 32, dur, "http://"+nginxAddr+path)
		wharfMedRPS, _ := wrkRun(b, 2, 32, dur, psURL+mediumPath)
		nginxMedRPS, _ := wrkRun(b, 2, 32, dur, "http://"+nginxAddr+mediumPath)
		_, wharfBPS := wrkRun(b, 1, 2, dur, psURL+bigPath)
		_, nginxBPS := wrkRun(b, 1, 2, dur, "http://"+nginxAddr+bigPath)
		wharfTLSRPS, _ := wrkRun(b, 2, 32, dur, tlsURL+path)
		nginxTLSRPS, _ := wrkRun(b, 2, 32, dur, "https://"+nginxTLSAddr+path)
		_, wharfTLSBPS := wrkRun(b, 1, 2, dur, tlsURL+bigPath)
		_, nginxTLSBPS := wrkRun(b, 1, 2, dur, "https://"+nginxTLSAddr+bigPath)
		getBPS, curlBPS := getVsCurl(b, env, dir, "bench-gig@1", gigURL, 1<<30)
		b.ReportMetric(wharfRPS, "wharf-4KiB-req/s")
		b.ReportMetric(nginxRPS, "nginx-4KiB-req/s")
		b.ReportMetric(wharfRPS/nginxRPS, "ratio-4KiB")
		b.ReportMetric(wharfMedRPS, "wharf-64KiB-req/s")
		b.ReportMetric(nginxMedRPS, "nginx-64KiB-req/s")
		b.ReportMetric(wharfMedRPS/nginxMedRPS, "ratio-64KiB")
		b.ReportMetric(wharfBPS/1e6, "wharf-100MiB-MB/s")
		b.ReportMetric(nginxBPS/1e6, "nginx-100MiB-MB/s")
		b.ReportMetric(wharfBPS/nginxBPS, "ratio-100MiB")
		b.ReportMetric(wharfTLSRPS, "wharf-tls-4KiB-req/s")
		b.ReportMetric(nginxTLSRPS, "nginx-tls-4KiB-req/s")
		b.ReportMetric(wharfTLSRPS/nginxTLSRPS, "ratio-tls-4KiB")
		b.ReportMetric(wharfTLSBPS/1e6, "wharf-tls-100MiB-MB/s")
		b.ReportMetric(nginxTLSBPS/1e6, "nginx-tls-100MiB-MB/s")
		b.ReportMetric(wharfTLSBPS/nginxTLSBPS, "ratio-tls-100MiB")
		b.ReportMetric(getBPS/1e6, "wharf-get-1GiB-MB/s")
		b.ReportMetric(curlBPS/1e6, "curl-1GiB-MB/s")
		b.ReportMetric(getBPS/curlBPS, "ratio-get-1GiB")
	}
	b.ReportMetric(0, "ns/op")
}

// getVsCurl downloads the same file with `wharf get` (resolve, download,
// verify every byte, fsync) and with curl from the PS (written to a file
// on the same file system, then sync), and returns both rates in bytes/s.
func getVsCurl(b *testing.B, env []string, dir, spec, url string, size int64) (float64, float64) {
	b.Helper()
	dest := filepath.Join(dir, "get")
	os.RemoveAll(dest)
	start := time.Now()
	if r := run(b, env, "get", spec, "--dest", dest); r.code != 0 {
		b.Fatalf("wharf get %s: %s%s", spec, r.stdout, r.stderr)
	}
	getS := time.Since(start).Seconds()
	os.RemoveAll(dest)
	out := filepath.Join(dir, "curl.bin")
	start = time.Now()
	if o, err := exec.Command("sh", "-c", fmt.Sprintf("curl -sf -o %q %q && sync %q", out, url, out)).CombinedOutput(); err != nil {
		b.Fatalf("curl %s: %v\n%s", url, err, o)
	}
	curlS := time.Since(start).Seconds()
	os.Remove(out)
	return float64(size) / getS, float64(size) / curlS
}

// startPSOn is startPS on a given address (for a PS serving HTTPS, whose
// URL the caller knows).
func startPSOn(b *testing.B, env []string, name, installDir, addr string, extra ...string) {
	b.Helper()
	var tok api.EnrollToken
	mustJSON(b, env, &tok, "ns", "enroll-token")
	nsURL := ""
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "WHARF_NS="); ok {
			nsURL = v
		}
	}
	args := append([]string{"ps", "serve", "--enroll", tok.Token, "--install-dir", installDir, "--addr", addr, "--name", name, "--ns", nsURL}, extra...)
	p, _ := start(b, nil, nil, args...)
	deadline := time.Now().Add(60 * time.Second)
	for {
		var list api.ServerList
		mustJSON(b, env, &list, "server", "ls")
		for _, s := range list.Servers {
			if s.Name == name && !s.LastContact.IsZero() {
				return
			}
		}
		select {
		case <-p.done:
			b.Fatalf("wharf ps serve %s exited: %v", name, p.err)
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			b.Fatalf("package server %s did not enroll and poll within 60s", name)
		}
	}
}

// selfSigned writes a self-signed certificate for 127.0.0.1 and its key
// (PEM) into dir; wharf and nginx serve TLS with the same pair.
func selfSigned(b *testing.B, dir string) (certFile, keyFile string) {
	b.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		b.Fatal(err)
	}
	kb, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		b.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb}), 0o600)
	return certFile, keyFile
}
