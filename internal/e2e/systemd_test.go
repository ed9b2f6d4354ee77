//go:build linux

package e2e

import (
	"bufio"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The systemd units of deploy/systemd, as shipped.
var systemdUnits = []string{"wharf-ns.service", "wharf-ps.service"}

// unitsWithBinary copies the units into a temporary folder with the
// ExecStart binary replaced by the wharf under test (systemd-analyze
// verify checks that the binary exists and is executable).
func unitsWithBinary(t *testing.T) (dir string, paths []string) {
	t.Helper()
	dir = t.TempDir()
	for _, u := range systemdUnits {
		data, err := os.ReadFile(filepath.Join("..", "..", "deploy", "systemd", u))
		if err != nil {
			t.Fatal(err)
		}
		text := strings.ReplaceAll(string(data), "/usr/local/bin/wharf", wharfBin)
		p := filepath.Join(dir, u)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	return dir, paths
}

// TestSystemdUnitsVerify runs systemd-analyze verify on the units: it
// must exit 0 and say nothing (it only warns, exit 0, about an unknown key
// or a bad value, so any output fails the test); and systemd-analyze
// security must rate their exposure 2.5 or lower.
func TestSystemdUnitsVerify(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze not found: install Debian's systemd package (scripts/test-setup.sh does) to verify the units")
	}
	dir, paths := unitsWithBinary(t)
	// First a unit that is surely right: if that fails, systemd-analyze
	// cannot work here (a container without what it needs), which is not
	// the units' fault; say why and skip.
	sane := filepath.Join(dir, "wharf-sanity.service")
	if err := os.WriteFile(sane, []byte("[Service]\nExecStart="+wharfBin+" --help\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(analyze, "verify", sane).CombinedOutput(); err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Skipf("systemd-analyze verify cannot run here (it fails on a trivial unit: %v): %s", err, out)
	}
	out, err := exec.Command(analyze, append([]string{"verify"}, paths...)...).CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Errorf("systemd-analyze verify %s: %v\n%s", strings.Join(systemdUnits, " "), err, out)
	}
	re := regexp.MustCompile(`Overall exposure level for \S+: ([0-9.]+)`)
	for _, p := range paths {
		out, err := exec.Command(analyze, "security", "--offline=yes", p).CombinedOutput()
		m := re.FindSubmatch(out)
		if err != nil || m == nil {
			t.Errorf("systemd-analyze security %s: %v\n%s", filepath.Base(p), err, out)
			continue
		}
		score, _ := strconv.ParseFloat(string(m[1]), 64)
		t.Logf("%s: systemd-analyze security exposure %.1f (0 is best, 10 worst)", filepath.Base(p), score)
		if score > 2.5 {
			t.Errorf("%s: exposure %.1f, want at most 2.5", filepath.Base(p), score)
		}
	}
}

// execStart returns the ExecStart command line of a unit with the
// variables of its Environment= lines (and extra) expanded, split as
// systemd splits it.
func execStart(t *testing.T, unit string, extra map[string]string) []string {
	t.Helper()
	f, err := os.Open(unit)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	env := map[string]string{}
	var cmd string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if v, ok := strings.CutPrefix(line, "Environment="); ok {
			k, val, _ := strings.Cut(v, "=")
			env[k] = val
		}
		if v, ok := strings.CutPrefix(line, "ExecStart="); ok {
			cmd = v
		}
	}
	for k, v := range extra {
		env[k] = v
	}
	if cmd == "" {
		t.Fatalf("%s has no ExecStart=", unit)
	}
	var args []string
	for _, w := range strings.Fields(cmd) {
		switch {
		case strings.HasPrefix(w, "${") && strings.HasSuffix(w, "}"):
			args = append(args, env[w[2:len(w)-1]]) // one word, as systemd does
		case strings.HasPrefix(w, "$"):
			args = append(args, strings.Fields(env[w[1:]])...) // split into words
		default:
			args = append(args, w)
		}
	}
	return args
}

// TestSystemdNotifyReady starts each unit's ExecStart command (its
// folders moved into the test's) with NOTIFY_SOCKET pointing at a socket
// of the test, as systemd does for Type=notify, and waits for READY=1
// once it serves, then STOPPING=1 when it is stopped.
func TestSystemdNotifyReady(t *testing.T) {
	dir, paths := unitsWithBinary(t)
	data := filepath.Join(dir, "ns-data")
	nsArgs := execStart(t, paths[0], map[string]string{"WHARF_NS_ADDR": "127.0.0.1:0"})
	for i, a := range nsArgs {
		if a == "/var/lib/wharf" {
			nsArgs[i] = data
		}
	}
	nsProc, nsURL := notifyStart(t, dir, "ns", nsListening, nsArgs[1:])
	tok, err := os.ReadFile(filepath.Join(data, "admin.token"))
	if err != nil {
		t.Fatal(err)
	}
	env := []string{"WHARF_NS=" + nsURL, "WHARF_TOKEN=" + strings.TrimSpace(string(tok))}
	var enroll struct {
		Token string `json:"token"`
	}
	mustJSON(t, env, &enroll, "ns", "enroll-token")
	psArgs := execStart(t, paths[1], map[string]string{
		"WHARF_PS_INSTALL_DIR": filepath.Join(dir, "ps"),
		"WHARF_PS_OPTS":        "--ns " + nsURL + " --enroll " + enroll.Token + " --name ps1 --addr 127.0.0.1:0",
	})
	psProc, _ := notifyStart(t, dir, "ps", regexp.MustCompile(`Package Server \S+ serving on (\S+)`), psArgs[1:])
	psProc.stopNotified(t)
	nsProc.stopNotified(t)
}

// notified is a process started with a notification socket.
type notified struct {
	*proc
	sock *net.UnixConn
}

func notifyStart(t *testing.T, dir, name string, ready *regexp.Regexp, args []string) (*notified, string) {
	t.Helper()
	path := filepath.Join(dir, name+".notify")
	sock, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sock.Close() })
	p, match := start(t, ready, []string{"NOTIFY_SOCKET=" + path}, args...)
	n := &notified{proc: p, sock: sock}
	if got := n.next(t); got != "READY=1" {
		t.Fatalf("%s: first notification %q, want READY=1", name, got)
	}
	return n, match
}

func (n *notified) next(t *testing.T) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	deadline, _ := ctx.Deadline()
	n.sock.SetReadDeadline(deadline)
	buf := make([]byte, 4096)
	k, err := n.sock.Read(buf)
	if err != nil {
		t.Fatalf("no notification: %v\n%s", err, n.stderr())
	}
	return string(buf[:k])
}

func (n *notified) stopNotified(t *testing.T) {
	t.Helper()
	if err := n.stop(t); err != nil {
		t.Errorf("stop: %v", err)
	}
	if got := n.next(t); got != "STOPPING=1" {
		t.Errorf("notification after SIGTERM %q, want STOPPING=1", got)
	}
}
