package cli

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wharf-project/wharf/internal/ns"
)

// TestRotateAdminTokenOffline: with the admin token lost, `wharf ns
// rotate-admin-token --data DIR` replaces it through the store: the NS
// then takes the printed token, written to admin.token, and not the old
// one.
func TestRotateAdminTokenOffline(t *testing.T) {
	dir := t.TempDir()
	srv, err := ns.Open(context.Background(), ns.Config{DataDir: dir}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	old := srv.NewAdminToken
	srv.Close()
	code, stdout, stderr := runGet(t, "ns", "rotate-admin-token", "--data", dir)
	fresh := strings.TrimSpace(stdout)
	if code != 0 || !strings.HasPrefix(fresh, "wharf-admin-") || fresh == old {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	if file, _ := os.ReadFile(filepath.Join(dir, ns.AdminTokenFile)); strings.TrimSpace(string(file)) != fresh {
		t.Errorf("admin.token holds %q, want the new token", file)
	}
	srv, err = ns.Open(context.Background(), ns.Config{DataDir: dir}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	if srv.NewAdminToken != "" {
		t.Fatal("the NS made yet another admin token")
	}
	hs := httptest.NewServer(srv.Handler())
	defer hs.Close()
	n := &testNS{t: t, url: hs.URL, token: fresh}
	if code, _, stderr := n.wharf("server", "ls"); code != 0 {
		t.Fatalf("the new admin token: exit %d %s", code, stderr)
	}
	n.token = old
	if code, _, stderr := n.wharf("server", "ls"); code != 1 || !strings.Contains(stderr, "401") {
		t.Fatalf("the old admin token: exit %d %q, want 401", code, stderr)
	}
}
