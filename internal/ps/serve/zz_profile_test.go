package serve_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime/pprof"
	"testing"
	"time"

	"github.com/wharf-project/wharf/internal/api"
	"github.com/wharf-project/wharf/internal/httpguard"
	"github.com/wharf-project/wharf/internal/ps/pstest"
	"github.com/wharf-project/wharf/internal/ps/serve"
	"github.com/wharf-project/wharf/internal/ps/store"
	"github.com/wharf-project/wharf/internal/wharf"
)

func TestZZServeForProfile(t *testing.T) {
	if os.Getenv("WHARF_PROFILE_SERVE") == "" {
		t.Skip()
	}
	dir := t.TempDir()
	st, err := store.Open(context.Background(), filepath.Join(dir, "ps.db"))
	if err != nil {
		t.Fatal(err)
	}
	id := string(wharf.NewPackageID())
	pdir := filepath.Join(dir, "root", id)
	os.MkdirAll(pdir, 0o755)
	b := make([]byte, 4096)
	rand.Read(b)
	os.WriteFile(filepath.Join(pdir, "f.bin"), b, 0o644)
	p := store.Package{ID: id, Name: "p", Version: "1", Root: filepath.Dir(pdir), Path: pdir, State: api.StateDownloading, Size: 4096, FileCount: 1,
		Files: []store.File{{File: wharf.File{Path: "f.bin", Size: 4096, SHA256: wharf.Digest(pstest.Sum(b))}}}}
	if err := st.Put(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	if err := st.MarkReady(context.Background(), id, map[string]time.Time{"f.bin": time.Now()}, time.Now()); err != nil {
		t.Fatal(err)
	}
	h := serve.New(st, nil, nil, nil)
	srv := serve.NewServer(serve.NewGate(h, st), httpguard.Limits{}, pstest.Logger(t))
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	url := fmt.Sprintf("http://%s/packages/%s/f.bin", ln.Addr(), id)
	os.WriteFile("/tmp/prof/url", []byte(url), 0o644)
	os.WriteFile("/tmp/prof/file", []byte(filepath.Join(pdir, "f.bin")), 0o644)
	go srv.Serve(ln)
	f, _ := os.Create("/tmp/prof/cpu.pprof")
	time.Sleep(3 * time.Second)
	pprof.StartCPUProfile(f)
	time.Sleep(40 * time.Second)
	pprof.StopCPUProfile()
	f.Close()
	time.Sleep(2 * time.Second)
	srv.Close()
	_ = http.StatusOK
}
