package ps_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wharf-project/wharf/internal/api"
	"github.com/wharf-project/wharf/internal/ps/admin"
	"github.com/wharf-project/wharf/internal/ps/clock/clocktest"
	"github.com/wharf-project/wharf/internal/testenv/nstest"
)

// selfSigned writes a certificate for 127.0.0.1 and its key.
func selfSigned(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ps1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:    x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(key)
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600)
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

func TestServesHTTPS(t *testing.T) {
	ns := nstest.New(t)
	p := ns.AddPackage("p", "1", map[string][]byte{"f.txt": []byte("over tls")})
	cfg := baseConfig(t, ns)
	var pool *x509.CertPool
	cfg.TLSCert, cfg.TLSKey, pool = selfSigned(t)
	r := start(t, cfg)
	if !strings.HasPrefix(r.d.URL(), "https://127.0.0.1:") || ns.ServerURL("ps1") != r.d.URL() {
		t.Errorf("URL: got %q, enrolled %q", r.d.URL(), ns.ServerURL("ps1"))
	}
	if _, ok := ns.WaitState("ps1", p.ID, api.StateReady, 10*time.Second); !ok {
		t.Fatal("not ready")
	}
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := hc.Get(r.d.URL() + "/packages/" + p.ID + "/f.txt")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "over tls" || resp.TLS == nil {
		t.Errorf("HTTPS download: HTTP %d %q", resp.StatusCode, body)
	}
	// Plain HTTP on the TLS port is refused.
	if resp, err := http.Get("http://" + r.d.Addr() + "/packages/" + p.ID + "/f.txt"); err == nil {
		if resp.StatusCode == 200 {
			t.Error("plain HTTP served a file on the TLS listener")
		}
		resp.Body.Close()
	}

	cfg2 := baseConfig(t, ns)
	cfg2.TLSCert, cfg2.TLSKey = cfg.TLSCert, filepath.Join(t.TempDir(), "missing.pem")
	d := mustNew(t, cfg2)
	if err := d.Serve(context.Background()); err == nil || !strings.Contains(err.Error(), "missing.pem") {
		t.Errorf("missing key: got %v", err)
	}
}

func TestConfigPollRetriesAndUpdateConfigReportsErrors(t *testing.T) {
	ns := nstest.New(t)
	p := ns.AddPackage("p", "1", map[string][]byte{"f": []byte("f")})
	ns.FailConfig(3)
	cfg := baseConfig(t, ns)
	clk := clocktest.NewInstant()
	cfg.Clock = clk
	r := start(t, cfg)
	if _, ok := ns.WaitState("ps1", p.ID, api.StateReady, 10*time.Second); !ok {
		t.Fatal("not ready after config errors")
	}
	if ns.ConfigPolls() < 4 {
		t.Errorf("config polls: got %d, want 3 failures and a success", ns.ConfigPolls())
	}
	var backoffs int
	for _, w := range clk.Waits() {
		if w >= 500*time.Millisecond {
			backoffs++
		}
	}
	if backoffs < 3 {
		t.Errorf("clock waits %v: want a backoff after each of 3 failures", clk.Waits())
	}

	ac := admin.NewClient(admin.SocketPath(cfg.InstallDir))
	ns.FailConfig(1)
	err := ac.UpdateConfig(context.Background())
	if err == nil || !strings.Contains(err.Error(), "injected failure") {
		t.Errorf("update-config while the NS fails: got %v", err)
	}
	if err := ac.UpdateConfig(context.Background()); err != nil {
		t.Errorf("update-config after: %v", err)
	}
	r.stop(t)
}
