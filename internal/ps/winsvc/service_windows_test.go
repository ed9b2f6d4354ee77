package winsvc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/windows"
	"golang.org/x/sys/windows/registry"
	"golang.org/x/sys/windows/svc"
	"golang.org/x/sys/windows/svc/mgr"

	"github.com/wharf-project/wharf/internal/testenv/winetest"
)

// The test binary is its own service: started by the service control
// manager with helperFlag, TestMain runs serviceHelper instead of the
// tests.
const helperFlag = "-wharf-service-helper"

func TestMain(m *testing.M) {
	if len(os.Args) == 4 && os.Args[1] == helperFlag {
		os.Exit(serviceHelper(os.Args[2], os.Args[3]))
	}
	os.Exit(m.Run())
}

// serviceHelper is a Package Server stand-in run as service name through
// Run: it counts its starts in dir, logs a warning (for the event log), and
// serves until stopped — or, when dir\mode says "fail", fails at once.
func serviceHelper(name, dir string) int {
	err := Run(name, filepath.Join(dir, "service.log"), slog.LevelInfo, func(ctx context.Context, log *slog.Logger, ready func()) error {
		n := 1
		for ; ; n++ {
			if _, err := os.Stat(filepath.Join(dir, fmt.Sprintf("started-%d", n))); err != nil {
				break
			}
		}
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("started-%d", n)), nil, 0o644); err != nil {
			return err
		}
		log.Warn("helper warning for the event log", "start", n)
		if mode, _ := os.ReadFile(filepath.Join(dir, "mode")); strings.TrimSpace(string(mode)) == "fail" {
			return errors.New("told to fail")
		}
		ready()
		<-ctx.Done()
		// A clean stop: finish the work, then return.
		return os.WriteFile(filepath.Join(dir, "stopped-cleanly"), []byte(strconv.Itoa(n)), 0o644)
	})
	if err != nil {
		_ = os.WriteFile(filepath.Join(dir, "run-error"), []byte(err.Error()), 0o644)
		return 1
	}
	return 0
}

// waitFile waits until path exists, up to timeout.
func waitFile(path string, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if _, err := os.Stat(path); err == nil {
			return true
		}
		time.Sleep(50 * time.Millisecond)
	}
	return false
}

// TestServiceLifecycle installs the test binary as a service with recovery
// actions and an event source, starts it, stops it cleanly, makes it fail
// to see the service control manager restart it, and uninstalls it.
func TestServiceLifecycle(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	name := fmt.Sprintf("WharfTest%d", time.Now().UnixNano()%1_000_000)
	dir := t.TempDir()
	cfg := Config{Name: name, Exe: exe, Args: []string{helperFlag, name, dir}, Recovery: []time.Duration{time.Second}}
	warning, err := Install(cfg)
	if errors.Is(err, windows.ERROR_ACCESS_DENIED) {
		t.Skipf("installing a service needs an administrator: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	// Wine's service control manager has no failure actions: Install
	// installs without them and warns.
	recoveryGap := ""
	if warning != "" {
		if winetest.Version() == "" || !strings.Contains(warning, "WITHOUT recovery actions") {
			t.Errorf("Install warned: %s", warning)
		}
		recoveryGap = warning
	}
	installed := true
	defer func() {
		if installed {
			if err := Uninstall(name); err != nil {
				t.Errorf("Uninstall: %v", err)
			}
		}
	}()
	if _, err := Install(Config{Name: name, Exe: exe}); err == nil || !strings.Contains(err.Error(), "exists already") {
		t.Errorf("a second Install = %v, want an error saying it exists", err)
	}

	m, err := mgr.Connect()
	if err != nil {
		t.Fatal(err)
	}
	defer m.Disconnect()
	s, err := m.OpenService(name)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// QueryServiceConfig only: mgr.Service.Config also asks for levels of
	// QueryServiceConfig2W that Wine lacks.
	sc, err := queryConfig(s)
	if err != nil {
		t.Fatal(err)
	}
	if bin := windows.UTF16PtrToString(sc.BinaryPathName); sc.StartType != mgr.StartAutomatic ||
		!strings.Contains(bin, filepath.Base(exe)) || !strings.Contains(bin, helperFlag) ||
		windows.UTF16PtrToString(sc.DisplayName) != "Wharf Package Server" {
		t.Errorf("service config: start type %d, command %s, display name %s", sc.StartType, bin, windows.UTF16PtrToString(sc.DisplayName))
	}
	t.Run("RecoveryActions", func(t *testing.T) {
		if recoveryGap != "" {
			winetest.SkipGap(t, "ChangeServiceConfig2W(SERVICE_CONFIG_FAILURE_ACTIONS)", recoveryGap)
		}
		actions, err := s.RecoveryActions()
		winetest.Gap(t, "QueryServiceConfig2W(SERVICE_CONFIG_FAILURE_ACTIONS)", err)
		if err != nil {
			t.Fatal(err)
		}
		if len(actions) != 1 || actions[0].Type != mgr.ServiceRestart || actions[0].Delay != time.Second {
			t.Errorf("recovery actions %+v, want a restart after 1s", actions)
		}
		onErr, err := s.RecoveryActionsOnNonCrashFailures()
		winetest.Gap(t, "QueryServiceConfig2W(SERVICE_CONFIG_FAILURE_ACTIONS_FLAG)", err)
		if err != nil || !onErr {
			t.Errorf("recovery on non-crash failures: %v, %v; want true", onErr, err)
		}
	})
	k, err := registry.OpenKey(registry.LOCAL_MACHINE, `SYSTEM\CurrentControlSet\Services\EventLog\Application\`+name, registry.QUERY_VALUE)
	if err != nil {
		t.Errorf("event source %s: %v", name, err)
	} else {
		k.Close()
	}

	if err := Start(name); err != nil {
		t.Fatalf("Start: %v (run error: %s)", err, readFile(filepath.Join(dir, "run-error")))
	}
	if !waitFile(filepath.Join(dir, "started-1"), 10*time.Second) {
		t.Fatal("the service did not start its work")
	}
	if st, err := State(name); err != nil || st != "running" {
		t.Errorf("State = %q, %v; want running", st, err)
	}
	if err := Stop(name); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if got := readFile(filepath.Join(dir, "stopped-cleanly")); got != "1" {
		t.Errorf("the service's work did not finish cleanly on stop: %q", got)
	}
	if st, err := s.Query(); err != nil || st.State != svc.Stopped || st.Win32ExitCode != 0 {
		t.Errorf("after Stop: %+v, %v; want stopped with exit code 0", st, err)
	}
	log := readFile(filepath.Join(dir, "service.log"))
	for _, want := range []string{`"msg":"service running"`, `"msg":"stop requested"`, `"msg":"service stopped cleanly"`, `"service":"` + name + `"`} {
		if !strings.Contains(log, want) {
			t.Errorf("service log lacks %s:\n%s", want, log)
		}
	}

	t.Run("EventLog", func(t *testing.T) {
		msgs, err := readEventLog(name)
		winetest.Gap(t, "ReadEventLogW", err)
		if err == nil && len(msgs) == 0 && winetest.Version() != "" {
			winetest.SkipGap(t, "ReportEventW/ReadEventLogW", "events are accepted but never stored")
		}
		if err != nil {
			t.Fatal(err)
		}
		all := strings.Join(msgs, "\n")
		for _, want := range []string{"helper warning for the event log", "started", "stopped cleanly"} {
			if !strings.Contains(all, want) {
				t.Errorf("event log of %s lacks %q:\n%s", name, want, all)
			}
		}
	})

	t.Run("RestartAfterFailure", func(t *testing.T) {
		if recoveryGap != "" {
			winetest.SkipGap(t, "ChangeServiceConfig2W(SERVICE_CONFIG_FAILURE_ACTIONS)", "no recovery actions to restart the service with")
		}
		if err := os.WriteFile(filepath.Join(dir, "mode"), []byte("fail"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := s.Start(); err != nil {
			t.Fatal(err)
		}
		if !waitFile(filepath.Join(dir, "started-2"), 10*time.Second) {
			t.Fatal("the failing start did not run")
		}
		restarted := waitFile(filepath.Join(dir, "started-3"), 15*time.Second)
		st, _ := s.Query()
		if !restarted && winetest.Version() != "" {
			winetest.SkipGap(t, "service failure actions (SERVICE_CONFIG_FAILURE_ACTIONS restart)",
				fmt.Sprintf("the service stopped with exit code %d/%d and was not restarted within 15 s", st.Win32ExitCode, st.ServiceSpecificExitCode))
		}
		if !restarted {
			t.Fatalf("the service was not restarted after failing: %+v", st)
		}
		_ = os.Remove(filepath.Join(dir, "mode"))
	})

	if err := Uninstall(name); err != nil {
		t.Fatalf("Uninstall: %v", err)
	}
	installed = false
	if s2, err := m.OpenService(name); err == nil {
		s2.Close()
		// A service still open by a handle (ours) is marked for deletion
		// and goes when the handle closes.
		s.Close()
		if s3, err := m.OpenService(name); err == nil {
			s3.Close()
			t.Errorf("service %s is still there after Uninstall", name)
		}
	}
	if k, err := registry.OpenKey(registry.LOCAL_MACHINE, `SYSTEM\CurrentControlSet\Services\EventLog\Application\`+name, registry.QUERY_VALUE); err == nil {
		k.Close()
		t.Errorf("event source %s is still there after Uninstall", name)
	}
}

func queryConfig(s *mgr.Service) (*windows.QUERY_SERVICE_CONFIG, error) {
	n := uint32(4096)
	for {
		b := make([]byte, n)
		p := (*windows.QUERY_SERVICE_CONFIG)(unsafe.Pointer(&b[0]))
		err := windows.QueryServiceConfig(s.Handle, p, n, &n)
		if err == nil {
			return p, nil
		}
		if !errors.Is(err, windows.ERROR_INSUFFICIENT_BUFFER) || n <= uint32(len(b)) {
			return nil, fmt.Errorf("QueryServiceConfigW: %w", err)
		}
	}
}

func readFile(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}

var (
	advapi32          = windows.NewLazySystemDLL("advapi32.dll")
	procOpenEventLog  = advapi32.NewProc("OpenEventLogW")
	procReadEventLog  = advapi32.NewProc("ReadEventLogW")
	procCloseEventLog = advapi32.NewProc("CloseEventLog")
)

// readEventLog returns the messages (the inserted strings) of the events of
// source in the Application log, newest first.
func readEventLog(source string) ([]string, error) {
	app, _ := windows.UTF16PtrFromString("Application")
	h, _, err := procOpenEventLog.Call(0, uintptr(unsafe.Pointer(app)))
	if h == 0 {
		return nil, fmt.Errorf("OpenEventLogW: %w", err)
	}
	defer procCloseEventLog.Call(h)
	const backwardsSequential = 0x0008 | 0x0001
	buf := make([]byte, 64<<10)
	var out []string
	for {
		var read, needed uint32
		r, _, err := procReadEventLog.Call(h, backwardsSequential, 0, uintptr(unsafe.Pointer(&buf[0])), uintptr(len(buf)),
			uintptr(unsafe.Pointer(&read)), uintptr(unsafe.Pointer(&needed)))
		if r == 0 {
			if errors.Is(err, windows.ERROR_HANDLE_EOF) {
				return out, nil
			}
			return out, fmt.Errorf("ReadEventLogW: %w", err)
		}
		for off := uint32(0); off < read; {
			rec := buf[off:]
			length := le32(rec[0:])
			numStrings := int(le16(rec[26:]))
			stringOffset := le32(rec[36:])
			src := utf16At(rec[56:])
			if src == source {
				p := rec[stringOffset:length]
				for range numStrings {
					s := utf16At(p)
					out = append(out, s)
					p = p[2*(len(windows.StringToUTF16(s))):]
				}
			}
			off += length
		}
	}
}

func le16(b []byte) uint16 { return uint16(b[0]) | uint16(b[1])<<8 }
func le32(b []byte) uint32 { return uint32(le16(b)) | uint32(le16(b[2:]))<<16 }

// utf16At decodes the NUL-terminated UTF-16 string at the start of b.
func utf16At(b []byte) string {
	var u []uint16
	for i := 0; i+1 < len(b); i += 2 {
		c := le16(b[i:])
		if c == 0 {
			break
		}
		u = append(u, c)
	}
	return windows.UTF16ToString(u)
}
