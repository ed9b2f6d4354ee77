package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// wharfBin is the binary built once for the whole package.
var wharfBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "wharf-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	wharfBin = filepath.Join(dir, "wharf")
	build := exec.Command("go", "build", "-o", wharfBin, "github.com/wharf-project/wharf/cmd/wharf")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build wharf:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// proc is a running wharf process whose output goes to the test log.
type proc struct {
	cmd    *exec.Cmd
	done   chan struct{}
	mu     sync.Mutex
	out    bytes.Buffer
	errOut bytes.Buffer // its stderr, which also goes to the test log
	err    error
}

// start runs `wharf args...` and waits until a line of its stdout matches
// ready; it returns the process and the last submatch of ready. With a nil
// ready it returns at once.
func start(t testing.TB, ready *regexp.Regexp, env []string, args ...string) (*proc, string) {
	t.Helper()
	cmd := exec.Command(wharfBin, args...)
	cmd.Env = append(os.Environ(), env...)
	dieWithTest(cmd)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, done: make(chan struct{})}
	cmd.Stderr = io.MultiWriter(&logWriter{t: t, prefix: filepath.Base(args[0]) + " " + args[1] + ": "}, lockedWriter{&p.mu, &p.errOut})
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	match := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Text()
			p.mu.Lock()
			p.out.WriteString(line + "\n")
			p.mu.Unlock()
			if ready == nil {
				continue
			}
			if m := ready.FindStringSubmatch(line); m != nil {
				select {
				case match <- m[len(m)-1]:
				default:
				}
			}
		}
	}()
	go func() { p.err = cmd.Wait(); close(p.done) }()
	t.Cleanup(func() { p.kill() })
	if ready == nil {
		return p, ""
	}
	select {
	case m := <-match:
		return p, m
	case <-p.done:
		t.Fatalf("wharf %s exited before it was ready: %v\n%s", strings.Join(args, " "), p.err, p.output())
	case <-time.After(60 * time.Second):
		t.Fatalf("wharf %s not ready after 60s:\n%s", strings.Join(args, " "), p.output())
	}
	return nil, ""
}

// stderr returns what the process wrote to stderr so far.
func (p *proc) stderr() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.errOut.String()
}

// lockedWriter writes to w under mu.
type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

func (p *proc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

// stop sends SIGTERM and waits; it returns the exit error.
func (p *proc) stop(t testing.TB) error {
	t.Helper()
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return p.err
	case <-time.After(20 * time.Second):
		t.Fatal("process did not stop within 20s of SIGTERM")
	}
	return nil
}

// kill sends SIGKILL and waits.
func (p *proc) kill() {
	select {
	case <-p.done:
		return
	default:
	}
	p.cmd.Process.Kill()
	<-p.done
}

type logWriter struct {
	t      testing.TB
	prefix string
}

func (w *logWriter) Write(b []byte) (int, error) {
	for _, line := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
		w.t.Log(w.prefix + line)
	}
	return len(b), nil
}

// result of one CLI run.
type result struct {
	code           int
	stdout, stderr string
}

// run runs the wharf CLI to completion.
func run(t testing.TB, env []string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, wharfBin, args...)
	cmd.Env = append(os.Environ(), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errb.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run wharf %v: %v", args, err)
	}
	return r
}

// mustJSON runs a command that must succeed and decodes its --json output.
func mustJSON(t testing.TB, env []string, v any, args ...string) {
	t.Helper()
	r := run(t, env, append(args, "--json")...)
	if r.code != 0 {
		t.Fatalf("wharf %s: exit %d: %s", strings.Join(args, " "), r.code, r.stderr)
	}
	if err := json.NewDecoder(strings.NewReader(r.stdout)).Decode(v); err != nil && err != io.EOF {
		t.Fatalf("wharf %s: decode output: %v\n%s", strings.Join(args, " "), err, r.stdout)
	}
}

// nsListening matches the NS's ready line and captures its URL.
var nsListening = regexp.MustCompile(`listening on (https?://\S+)`)

// startNS starts `wharf ns serve` on a free loopback port and returns the
// process, its URL and the environment that points the CLI at it.
func startNS(t testing.TB, dataDir, dsn string, extra ...string) (*proc, string, []string) {
	t.Helper()
	args := []string{"ns", "serve", "--data", dataDir, "--addr", "127.0.0.1:0"}
	if dsn != "" {
		args = append(args, "--db", dsn)
	}
	args = append(args, extra...)
	p, url := start(t, nsListening, nil, args...)
	tok, err := os.ReadFile(filepath.Join(dataDir, "admin.token"))
	if err != nil {
		t.Fatalf("admin token file: %v", err)
	}
	return p, url, []string{"WHARF_NS=" + url, "WHARF_TOKEN=" + strings.TrimSpace(string(tok))}
}
