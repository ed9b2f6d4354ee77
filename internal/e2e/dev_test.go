package e2e

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestDevPrintsAWorkingGet runs `wharf dev` as a newcomer would and runs the
// `wharf get` command it prints, with the environment it prints: a client
// token, not the admin token.
func TestDevPrintsAWorkingGet(t *testing.T) {
	data := t.TempDir()
	dev, _ := start(t, regexp.MustCompile(`(Stop with Ctrl-C)`), nil, "dev", "--data", data, "--addr", "127.0.0.1:0")
	banner := dev.output()
	exportLine := regexp.MustCompile(`export (WHARF_NS=\S+) (WHARF_TOKEN=\S+)`).FindStringSubmatch(banner)
	getLine := regexp.MustCompile(`\S+ (get \S+ --dest \S+)`).FindStringSubmatch(banner)
	adminLine := regexp.MustCompile(`Admin token:\s+(\S+)`).FindStringSubmatch(banner)
	if exportLine == nil || getLine == nil || adminLine == nil {
		t.Fatalf("banner lacks the export, get or admin token line:\n%s", banner)
	}
	if !strings.HasPrefix(exportLine[2], "WHARF_TOKEN=wharf-client-") || strings.Contains(exportLine[2], adminLine[1]) {
		t.Fatalf("the get command runs with %s, want the client token (the admin token is %s)", exportLine[2], adminLine[1])
	}
	dest := filepath.Join(t.TempDir(), "demo")
	args := strings.Fields(getLine[1])
	args[len(args)-1] = dest // the banner's /tmp/wharf-demo, moved into the test's folder
	r := run(t, exportLine[1:], args...)
	if r.code != 0 {
		t.Fatalf("printed get command: exit %d: %s", r.code, r.stderr)
	}
	readme, err := os.ReadFile(filepath.Join(dest, "README.txt"))
	if err != nil || !strings.Contains(string(readme), "Wharf demo package") {
		t.Fatalf("demo package README: %q %v", readme, err)
	}
	if _, err := os.Stat(filepath.Join(dest, "data", "numbers.txt")); err != nil {
		t.Fatal(err)
	}
	// Starting up logs no refusal: the demo publish's blob checks (HEAD
	// 404) are the protocol, not refused requests (issue 16).
	if log := dev.stderr(); strings.Contains(log, "request refused") || !strings.Contains(log, "package server ready") {
		t.Errorf("wharf dev logged refused requests while starting:\n%s", log)
	}
	if err := dev.stop(t); err != nil {
		t.Fatalf("wharf dev after SIGTERM: %v", err)
	}

	// A second start reuses the cluster: same tokens, demo already there.
	dev2, _ := start(t, regexp.MustCompile(`(Stop with Ctrl-C)`), nil, "dev", "--data", data, "--addr", "127.0.0.1:0")
	if tok := regexp.MustCompile(`export WHARF_NS=\S+ WHARF_TOKEN=(\S+)`).FindStringSubmatch(dev2.output()); tok == nil || "WHARF_TOKEN="+tok[1] != exportLine[2] {
		t.Fatalf("second start printed another client token:\n%s", dev2.output())
	}
	if tok := regexp.MustCompile(`Admin token:\s+(\S+)`).FindStringSubmatch(dev2.output()); tok == nil || tok[1] != adminLine[1] {
		t.Fatalf("second start printed another admin token:\n%s", dev2.output())
	}
}
