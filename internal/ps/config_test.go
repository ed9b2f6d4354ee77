package ps_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wharf-project/wharf/internal/ps"
	"github.com/wharf-project/wharf/internal/wharf"
)

func writeFile(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "ps.toml")
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadFile(t *testing.T) {
	cfg := ps.DefaultConfig()
	err := cfg.LoadFile(writeFile(t, `
ns = "http://ns:8080"
addr = "0.0.0.0:9000"
[storage]
reserve = "2GiB"
volumes = ["/data1", "/data2"]
[relocation]
max_attempts = 5
interval = "1h"
bandwidth = "200MB/s"
`))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.NS != "http://ns:8080" || cfg.Addr != "0.0.0.0:9000" || cfg.InstallDir != ps.DefaultInstallDir() {
		t.Errorf("top level: got %+v", cfg)
	}
	if cfg.Storage.Reserve != (ps.Reserve{Bytes: 2 << 30}) || len(cfg.Storage.Volumes) != 2 {
		t.Errorf("storage: got %+v", cfg.Storage)
	}
	if cfg.Relocation != (ps.RelocationConfig{MaxAttempts: 5, Interval: time.Hour, Bandwidth: 200e6}) {
		t.Errorf("relocation: got %+v", cfg.Relocation)
	}
	if err := cfg.Validate(); err != nil {
		t.Errorf("validate: %v", err)
	}

	// Defaults stay where the file is silent.
	cfg = ps.DefaultConfig()
	if err := cfg.LoadFile(writeFile(t, "[storage]\nreserve = \"10%\"\n")); err != nil {
		t.Fatal(err)
	}
	if cfg.Storage.Reserve != (ps.Reserve{Percent: 10}) || cfg.Relocation.MaxAttempts != 3 || cfg.Relocation.Interval != 15*time.Minute {
		t.Errorf("partial file: got %+v", cfg)
	}
}

func TestLoadFileErrorsNameEveryProblem(t *testing.T) {
	cfg := ps.DefaultConfig()
	err := cfg.LoadFile(writeFile(t, `
colour = "blue"
[storage]
reserve = "lots"
volumez = ["/x"]
[relocation]
interval = "soon"
bandwidth = "fast"
[frobnicate]
x = 1
`))
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{`"colour"`, `"storage.volumez"`, `"frobnicate`, "storage.reserve", "relocation.interval", "relocation.bandwidth"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
	if err := cfg.LoadFile(writeFile(t, "[storage\n")); err == nil {
		t.Error("malformed TOML: no error")
	}
}

func TestValidate(t *testing.T) {
	cfg := ps.DefaultConfig()
	cfg.Addr = "nowhere"
	cfg.NS = "ftp://ns"
	cfg.Name = "bad name!"
	cfg.TLSCert = "cert.pem"
	cfg.Storage.Reserve = ps.Reserve{Percent: 150}
	cfg.Storage.Volumes = []string{"relative"}
	cfg.Relocation.Interval = 0
	err := cfg.Validate()
	if err == nil {
		t.Fatal("no error")
	}
	var joined interface{ Unwrap() []error }
	if !errors.As(err, &joined) || len(joined.Unwrap()) != 7 {
		t.Errorf("got %v, want 7 problems", err)
	}
	if err := ps.DefaultConfig().Validate(); err != nil {
		t.Errorf("defaults: %v", err)
	}
}

func TestSizes(t *testing.T) {
	for in, want := range map[string]int64{"0": 0, "512": 512, "1KiB": 1024, "2GiB": 2 << 30, "1.5 MB": 1500000, "3gb": 3e9, "10k": 10240} {
		if got, err := wharf.ParseSize(in); err != nil || got != want {
			t.Errorf("ParseSize(%q): got %d, %v, want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "x", "-1MB", "1XB", "MB"} {
		if _, err := wharf.ParseSize(in); err == nil {
			t.Errorf("ParseSize(%q): no error", in)
		}
	}
	if got, err := wharf.ParseRate("200MB/s"); err != nil || got != 200e6 {
		t.Errorf("ParseRate: got %d, %v", got, err)
	}
	if _, err := wharf.ParseRate("200MB"); err == nil {
		t.Error("ParseRate without /s: no error")
	}
	if r, err := ps.ParseReserve("5%"); err != nil || r.Percent != 5 {
		t.Errorf("ParseReserve: got %+v, %v", r, err)
	}
	if _, err := ps.ParseReserve("100%"); err == nil {
		t.Error("ParseReserve 100%: no error")
	}
}
