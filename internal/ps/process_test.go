package ps_test

import (
	"bytes"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/wharf-project/wharf/internal/api"
	"github.com/wharf-project/wharf/internal/ps/admin"
	"github.com/wharf-project/wharf/internal/ps/storeroot"
	"github.com/wharf-project/wharf/internal/testenv/nstest"
)

// buildWharf builds the wharf binary into a temporary folder.
func buildWharf(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	if runtime.GOOS == "windows" {
		t.Skip("uses SIGKILL and SIGTERM")
	}
	bin := filepath.Join(t.TempDir(), "wharf")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/wharf-project/wharf/cmd/wharf")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// freeAddr returns a loopback address with a port free right now.
func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// logWriter passes a process's output to t.Log line by line.
type logWriter struct {
	t    *testing.T
	name string
}

func (w logWriter) Write(p []byte) (int, error) {
	for _, line := range bytes.Split(bytes.TrimRight(p, "\n"), []byte("\n")) {
		w.t.Logf("%s: %s", w.name, line)
	}
	return len(p), nil
}

func startProcess(t *testing.T, bin, name string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Stdout = logWriter{t, name}
	cmd.Stderr = logWriter{t, name}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	return cmd
}

func TestProcessKilledMidDownloadResumes(t *testing.T) {
	bin := buildWharf(t)
	ns := nstest.New(t)
	ns.SetSettings(api.AgentSettings{PollWaitSeconds: 2, DownloadConcurrency: 4})
	large := map[string][]byte{"disk.img": randBytes(6 << 20), "readme": []byte("read me")}
	other := map[string][]byte{"a/b.bin": randBytes(3 << 20)}
	small := map[string][]byte{"x": []byte("x")}
	pl := ns.AddPackage("large", "1", large)
	po := ns.AddPackage("other", "1", other)
	ps := ns.AddPackage("small", "1", small)
	dl, do := nstest.Sum(large["disk.img"]), nstest.Sum(other["a/b.bin"])
	ns.SetRate(1<<20, dl, do)

	dir := t.TempDir()
	addr := freeAddr(t)
	args := []string{"ps", "serve", "--ns", ns.URL, "--install-dir", dir, "--addr", addr, "--name", "ps1"}
	first := startProcess(t, bin, "ps(1)", append(args, "--enroll", ns.EnrollToken())...)
	waitFor(t, "2 MiB of the large file", func() bool { return ns.BytesSent(dl) >= 2<<20 && ns.BytesSent(do) >= 1<<20 })
	if err := first.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	first.Wait()

	root := filepath.Join(dir, "Package Delivery")
	for _, id := range []string{pl.ID, po.ID} {
		if _, err := os.Lstat(filepath.Join(root, id)); !os.IsNotExist(err) {
			t.Fatalf("half-downloaded package %s in place after SIGKILL: %v", id, err)
		}
	}
	partial, err := os.Stat(filepath.Join(root, storeroot.DownloadDir, pl.ID, "disk.img"))
	if err != nil || partial.Size() == 0 {
		t.Fatalf("partial file after SIGKILL: %v %v", partial, err)
	}

	ns.SetRate(0)
	second := startProcess(t, bin, "ps(2)", args...) // no --enroll: reuses the credential
	for _, id := range []string{pl.ID, po.ID, ps.ID} {
		if s, ok := ns.WaitState("ps1", id, api.StateReady, 60*time.Second); !ok {
			t.Fatalf("package %s after restart: %+v", id, s)
		}
	}
	var resumed bool
	for _, r := range ns.Ranges() {
		resumed = resumed || r.Digest == dl && r.Offset >= partial.Size()
	}
	if !resumed {
		t.Errorf("no Range request resumed %s from offset %d or later: %v", dl, partial.Size(), ns.Ranges())
	}
	for id, files := range map[string]map[string][]byte{pl.ID: large, po.ID: other, ps.ID: small} {
		for p, want := range files {
			got, err := os.ReadFile(filepath.Join(root, id, filepath.FromSlash(p)))
			if err != nil || !bytes.Equal(got, want) {
				t.Errorf("package %s file %s: %d bytes, %v", id, p, len(got), err)
			}
		}
	}
	entries, _ := os.ReadDir(filepath.Join(root, storeroot.DownloadDir))
	for _, e := range entries {
		t.Errorf("temp folder left: %s", e.Name())
	}

	// The CLI talks to the running daemon.
	out, err := exec.Command(bin, "ps", "status", "--install-dir", dir, "--json").Output()
	if err != nil {
		t.Fatalf("wharf ps status: %v", err)
	}
	var st admin.Status
	if err := json.Unmarshal(out, &st); err != nil {
		t.Fatalf("wharf ps status --json: %v\n%s", err, out)
	}
	if st.Name != "ps1" || len(st.Packages) != 3 {
		t.Errorf("status: %+v", st)
	}
	for _, p := range st.Packages {
		if p.State != api.StateReady {
			t.Errorf("status package %s: %s %s", p.Name, p.State, p.Reason)
		}
	}
	if out, err := exec.Command(bin, "ps", "update-config", "--install-dir", dir).CombinedOutput(); err != nil {
		t.Errorf("wharf ps update-config: %v\n%s", err, out)
	}
	code, body := fetchURL(t, "http://"+addr+"/packages/"+pl.ID+"/readme")
	if code != 200 || body != "read me" {
		t.Errorf("download after restart: HTTP %d %q", code, body)
	}

	// SIGTERM stops it gracefully.
	second.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- second.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("exit after SIGTERM: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no exit after SIGTERM")
	}
	if out, err := exec.Command(bin, "ps", "status", "--install-dir", dir).CombinedOutput(); err == nil {
		t.Errorf("status with no daemon: want an error, got\n%s", out)
	}
}
