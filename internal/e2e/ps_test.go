package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wharf-project/wharf/internal/client"
	"github.com/wharf-project/wharf/internal/publish"
)

// TestTwoPackageServersAndFailover runs an NS and two PSs as processes,
// publishes a package to both, and downloads it with `wharf get`; then it
// kills the PS a client is downloading a large file from and checks the
// client finishes from the other one, resuming, with identical bytes.
func TestTwoPackageServersAndFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("moves a 512 MiB file several times")
	}
	dir := t.TempDir()
	_, _, env := startNS(t, filepath.Join(dir, "ns"), "")
	ps1, _ := startPS(t, env, "ps1", filepath.Join(dir, "ps1"))
	startPS(t, env, "ps2", filepath.Join(dir, "ps2"))

	tree := filepath.Join(dir, "tree")
	os.MkdirAll(filepath.Join(tree, "docs"), 0o755)
	big := make([]byte, 512<<20)
	rand.Read(big)
	if err := os.WriteFile(filepath.Join(tree, "big.img"), big, 0o644); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(tree, "docs", "README"), []byte("two servers\n"), 0o644)
	var res publish.Result
	mustJSON(t, env, &res, "package", "add", tree, "--name", "bigpkg", "--version", "1", "--servers", "ps1,ps2")
	id := res.Package.ID
	waitPackageReady(t, env, "ps1", id, 3*time.Minute)
	waitPackageReady(t, env, "ps2", id, 3*time.Minute)

	// Both serve it: a plain get works.
	dest1 := filepath.Join(dir, "get1")
	if r := run(t, env, "get", "bigpkg@1", "--dest", dest1); r.code != 0 {
		t.Fatalf("get: exit %d: %s", r.code, r.stderr)
	}
	sameFile(t, filepath.Join(dest1, "big.img"), big)

	// Kill ps1 (the first codebase) while the client is in the big file.
	dest2 := filepath.Join(dir, "get2")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	get := exec.CommandContext(ctx, wharfBin, "get", id, "--dest", dest2, "--parallel", "1", "--json")
	get.Env = append(os.Environ(), env...)
	var out, errb bytes.Buffer
	get.Stdout, get.Stderr = &out, &errb
	if err := get.Start(); err != nil {
		t.Fatal(err)
	}
	killed := false
	for deadline := time.Now().Add(2 * time.Minute); !killed && time.Now().Before(deadline); {
		parts, _ := filepath.Glob(filepath.Join(dest2, ".wharf-get-*", "*"))
		for _, p := range parts {
			if fi, err := os.Stat(p); err == nil && fi.Size() > 16<<20 && fi.Size() < 400<<20 {
				ps1.kill()
				killed = true
			}
		}
		time.Sleep(time.Millisecond)
	}
	if !killed {
		get.Process.Kill()
		t.Fatal("never saw the client mid-way through the big file")
	}
	if err := get.Wait(); err != nil {
		t.Fatalf("get after ps1 died: %v\n%s", err, errb.String())
	}
	sameFile(t, filepath.Join(dest2, "big.img"), big)
	var sum client.Result
	if err := json.Unmarshal(out.Bytes(), &sum); err != nil {
		t.Fatalf("get --json: %v\n%s", err, out.String())
	}
	from := map[string]int64{}
	for _, cb := range sum.Codebases {
		from[cb.Server] = cb.Bytes
	}
	if from["ps1"] == 0 || from["ps2"] == 0 || from["ps2"] >= int64(len(big)) {
		t.Fatalf("bytes per server %v: want some from ps1, and the rest from ps2 resumed, not restarted", from)
	}
	if leftovers, _ := filepath.Glob(filepath.Join(dest2, ".wharf-get-*")); len(leftovers) != 0 {
		t.Fatalf("staging folders left: %v", leftovers)
	}
	if !strings.Contains(errb.String(), "ps1") {
		t.Logf("client stderr: %s", errb.String())
	}
}

func sameFile(t *testing.T, path string, want []byte) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s: %d bytes differ from the published %d bytes", path, len(got), len(want))
	}
}
