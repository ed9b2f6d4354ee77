package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/windows"
	"golang.org/x/sys/windows/registry"

	"github.com/wharf-project/wharf/internal/ps/regsettings"
	"github.com/wharf-project/wharf/internal/testenv/nstest"
	"github.com/wharf-project/wharf/internal/testenv/winetest"
)

// The test binary stands in for wharf.exe: started by the service control
// manager as `<test binary> ps serve --service NAME ...`, TestMain runs the
// command line instead of the tests.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "ps" {
		os.Exit(Main(context.Background(), os.Args[1:], Stdio{In: os.Stdin, Out: os.Stdout, Err: os.Stderr}))
	}
	os.Exit(m.Run())
}

func run(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	code := Main(context.Background(), args, Stdio{In: strings.NewReader(""), Out: &out, Err: &errb})
	if code != 0 {
		return out.String(), fmt.Errorf("wharf %s: exit %d: %s", strings.Join(args, " "), code, strings.TrimSpace(errb.String()))
	}
	return out.String() + errb.String(), nil
}

// setRegistry writes the seed's relocation values for the test, never over
// an administrator's own.
func setRegistry(t *testing.T, attempts, minutes uint32) {
	t.Helper()
	if k, err := registry.OpenKey(registry.LOCAL_MACHINE, regsettings.Key, registry.QUERY_VALUE|registry.WOW64_64KEY); err == nil {
		k.Close()
		t.Skipf(`HKLM\%s exists on this machine; not touching it`, regsettings.Key)
	}
	k, _, err := registry.CreateKey(registry.LOCAL_MACHINE, regsettings.Key, registry.ALL_ACCESS|registry.WOW64_64KEY)
	if errors.Is(err, windows.ERROR_ACCESS_DENIED) {
		t.Skipf("needs an administrator: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	if err := k.SetDWordValue(regsettings.ValueMaxAttempts, attempts); err != nil {
		t.Fatal(err)
	}
	if err := k.SetDWordValue(regsettings.ValueInterval, minutes); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := registry.DeleteKey(registry.LOCAL_MACHINE, regsettings.Key); err != nil {
			t.Errorf("delete the registry key: %v", err)
		}
		_ = registry.DeleteKey(registry.LOCAL_MACHINE, `SOFTWARE\Wharf`)
	})
}

// lockedBuffer is a bytes.Buffer written by a command while the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// TestPSServiceUnderSCM is the service as an administrator sets it up:
// registry values, enrollment in a console, `wharf ps service install`,
// start, serving, a clean stop, uninstall — the real `wharf ps serve`
// under the service control manager.
func TestPSServiceUnderSCM(t *testing.T) {
	setRegistry(t, 7, 45)
	ns := nstest.New(t)
	installDir := filepath.Join(t.TempDir(), "Wharf")
	addr := freeAddr(t)
	serveFlags := []string{"--install-dir", installDir, "--addr", addr, "--name", "ps-win", "--ns", ns.URL}

	// Enrollment, in a console: serve until ready, then stop.
	ctx, cancel := context.WithCancel(context.Background())
	var out, errb lockedBuffer
	done := make(chan int, 1)
	go func() {
		done <- Main(ctx, append([]string{"ps", "serve", "--enroll", ns.EnrollToken()}, serveFlags...), Stdio{In: strings.NewReader(""), Out: &out, Err: &errb})
	}()
	var enrollErr error
	deadline := time.Now().Add(30 * time.Second)
wait:
	for {
		select {
		case code := <-done:
			enrollErr = fmt.Errorf("wharf ps serve --enroll: exit %d: %s", code, errb.String())
			break wait
		case <-time.After(50 * time.Millisecond):
			if strings.Contains(out.String(), "serving on") {
				cancel()
				if code := <-done; code != 0 {
					t.Fatalf("wharf ps serve stopped with %d: %s", code, errb.String())
				}
				break wait
			}
			if time.Now().After(deadline) {
				cancel()
				<-done
				t.Fatalf("wharf ps serve --enroll did not serve within 30 s: %s", errb.String())
			}
		}
	}
	cancel()
	if !strings.Contains(errb.String(), "max_attempts=7 interval=45m0s") {
		t.Errorf("wharf ps serve did not log the registry values:\n%s", errb.String())
	}
	if enrollErr != nil {
		t.Fatal(enrollErr)
	}

	name := fmt.Sprintf("WharfPSTest%d", time.Now().UnixNano()%1_000_000)
	msg, err := run(t, append([]string{"ps", "service", "install", "--service-name", name}, serveFlags[:len(serveFlags)-2]...)...)
	if err != nil {
		t.Fatal(err)
	}
	installed := true
	defer func() {
		if installed {
			if _, err := run(t, "ps", "service", "uninstall", "--service-name", name); err != nil {
				t.Errorf("uninstall: %v", err)
			}
		}
	}()
	if !strings.Contains(msg, "ps serve --service "+name+" --install-dir "+installDir) {
		t.Errorf("install said: %s", msg)
	}
	if strings.Contains(msg, "WITHOUT recovery actions") && winetest.Version() == "" {
		t.Errorf("install warned on Windows: %s", msg)
	}

	startErr := func() error { _, err := run(t, "ps", "service", "start", "--service-name", name); return err }()
	logText := func() string {
		b, _ := os.ReadFile(filepath.Join(installDir, serviceLogName))
		return string(b)
	}
	if startErr != nil {
		t.Fatalf("start: %v\nlog:\n%s", startErr, logText())
	}
	resp, err := http.Get("http://" + addr + "/packages/00000000-0000-4000-8000-000000000000/x")
	if err != nil {
		t.Fatalf("the service does not serve: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET of an unknown package: %d, want 404", resp.StatusCode)
	}
	if _, err := run(t, "ps", "service", "stop", "--service-name", name); err != nil {
		t.Fatal(err)
	}
	if log := logText(); !strings.Contains(log, "service stopped cleanly") || !strings.Contains(log, "max_attempts=7 interval=45m0s") {
		t.Errorf("the service log lacks the clean stop or the registry values:\n%s", log)
	}
	if _, err := run(t, "ps", "service", "uninstall", "--service-name", name); err != nil {
		t.Fatal(err)
	}
	installed = false
}
