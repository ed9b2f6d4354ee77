package cli

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wharf-project/wharf/internal/client"
	"github.com/wharf-project/wharf/internal/client/clienttest"
	"github.com/wharf-project/wharf/internal/testenv/nstest"
)

// runGet runs `wharf args...` in-process and returns its exit status and
// output.
func runGet(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = Main(t.Context(), args, Stdio{In: strings.NewReader(""), Out: &out, Err: &errOut})
	return code, out.String(), errOut.String()
}

// TestGetCommand runs `wharf get` against the real NS (nstest) with a
// client token, never the admin token, and two fake Package Servers that
// check the NS's signatures.
func TestGetCommand(t *testing.T) {
	ns := nstest.New(t)
	ps1, ps2 := clienttest.NewPS(t, "ps1"), clienttest.NewPS(t, "ps2")
	s1, s2 := ns.Enroll("ps1", ps1.URL), ns.Enroll("ps2", ps2.URL)
	ps1.RequireSignature(s1.SigningKey)
	ps2.RequireSignature(s2.SigningKey)
	files := map[string][]byte{
		"setup.exe":          bytes.Repeat([]byte("MZ"), 40_000),
		"docs/read me.txt":   []byte("hello\n"),
		"docs/deep/more.txt": []byte("more\n"),
	}
	oldFiles := map[string][]byte{"old": []byte("old")}
	old := ns.Publish("tool", "1.0", oldFiles)
	pkg := ns.Publish("tool", "2.0", files)
	ps1.Put(old.ID, oldFiles)
	ps1.Put(pkg.ID, files)
	ps2.Put(pkg.ID, files)
	ns.Ready(s1, old.ID, pkg.ID)
	ns.Ready(s2, pkg.ID)
	ns.Publish("unready", "1", files)
	token := ns.ClientToken("cli")
	// ps1 dies in the middle of setup.exe; ps2 finishes it.
	ps1.SetFault(func(w http.ResponseWriter, r *http.Request, path string, data []byte) bool {
		if path != "setup.exe" {
			return false
		}
		clienttest.DieAfter(w, data, 12345)
		return true
	})

	t.Run("json", func(t *testing.T) {
		dest := filepath.Join(t.TempDir(), "out")
		code, stdout, stderr := runGet(t, "get", "--ns", ns.URL, "--token", token,
			"--dest", dest, "--parallel", "2", "--json", "tool")
		if code != 0 {
			t.Fatalf("exit %d, stderr %q", code, stderr)
		}
		var res client.Result
		if err := json.Unmarshal([]byte(stdout), &res); err != nil {
			t.Fatalf("stdout %q: %v", stdout, err)
		}
		if res.PackageID != pkg.ID || res.Version != "2.0" || res.Files != 3 || res.Bytes != pkg.Size || len(res.Codebases) != 2 {
			t.Errorf("summary %+v: want package %s, version 2.0, 3 files, %d bytes, 2 codebases", res, pkg.ID, pkg.Size)
		}
		if res.Codebases[1].Server != "ps2" || res.Codebases[1].Bytes < int64(len(files["setup.exe"])-12345) {
			t.Errorf("codebases %+v: want ps2 to have sent the rest of setup.exe", res.Codebases)
		}
		for p, want := range files {
			got, err := os.ReadFile(filepath.Join(dest, filepath.FromSlash(p)))
			if err != nil || !bytes.Equal(got, want) {
				t.Errorf("%s: got %d bytes, %v; want %d bytes", p, len(got), err, len(want))
			}
		}
		var sawRange bool
		for _, r := range ps2.Requests() {
			sawRange = sawRange || r.Path == "setup.exe" && r.Range == "bytes=12345-"
		}
		if !sawRange {
			t.Errorf("ps2 requests %+v: want setup.exe from bytes=12345-", ps2.Requests())
		}
	})

	t.Run("text with env and version", func(t *testing.T) {
		t.Setenv("WHARF_NS", ns.URL)
		t.Setenv("WHARF_TOKEN", token)
		dest := t.TempDir()
		code, stdout, stderr := runGet(t, "get", "tool@1.0", "--dest", dest)
		if code != 0 {
			t.Fatalf("exit %d, stderr %q", code, stderr)
		}
		if want := "tool 1.0 (" + old.ID + "): 1 file, 3 B in " + dest; !strings.Contains(stdout, want) {
			t.Errorf("stdout %q, want it to contain %q", stdout, want)
		}
		if got, _ := os.ReadFile(filepath.Join(dest, "old")); string(got) != "old" {
			t.Errorf("file old holds %q", got)
		}
	})

	for _, tc := range []struct {
		name     string
		args     []string
		code     int
		inStderr string
	}{
		{"not ready", []string{"unready", "--dest", "DEST"}, 1, "is not ready on any package server"},
		{"unknown", []string{"nope", "--dest", "DEST"}, 1, "package nope: not found"},
		{"unknown version", []string{"tool@3", "--dest", "DEST"}, 1, `package "tool" has no version "3" (it has 1.0, 2.0)`},
		{"no dest", []string{"tool"}, 2, "--dest"},
		{"bad parallel", []string{"tool", "--dest", "DEST", "--parallel", "0"}, 2, "--parallel"},
		{"no package", []string{"--dest", "DEST"}, 2, "accepts 1 arg"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dest := filepath.Join(t.TempDir(), "dest")
			args := []string{"get", "--ns", ns.URL, "--token", token}
			for _, a := range tc.args {
				args = append(args, strings.ReplaceAll(a, "DEST", dest))
			}
			code, _, stderr := runGet(t, args...)
			if code != tc.code || !strings.Contains(stderr, tc.inStderr) || strings.Count(stderr, "\n") != 1 {
				t.Errorf("exit %d, stderr %q; want exit %d and one line with %q", code, stderr, tc.code, tc.inStderr)
			}
			if _, err := os.Stat(dest); err == nil {
				t.Errorf("destination %s was created", dest)
			}
		})
	}
}

// TestGetWithoutToken: without a token a signed package is not found, and
// the message says why.
func TestGetWithoutToken(t *testing.T) {
	ns := nstest.New(t)
	ns.Publish("tool", "1", map[string][]byte{"f": []byte("x")})
	t.Setenv("WHARF_TOKEN", "")
	code, _, stderr := runGet(t, "get", "--ns", ns.URL, "tool", "--dest", t.TempDir())
	if code != 1 || !strings.Contains(stderr, "not found") || !strings.Contains(stderr, "client token") {
		t.Fatalf("exit %d, stderr %q; want 1 and a hint about client tokens", code, stderr)
	}
}

// TestHelpShowsNoSecret: with WHARF_TOKEN (and the other variables) set,
// no help text prints their values (a flag's default would).
func TestHelpShowsNoSecret(t *testing.T) {
	const secret = "wharf-admin-SECRET-VALUE-xyz"
	t.Setenv("WHARF_TOKEN", secret)
	t.Setenv("WHARF_NS", "http://secret-ns.example:1")
	t.Setenv("WHARF_CA", "/secret/ca.pem")
	for _, args := range [][]string{{"--help"}, {"get", "--help"}, {"package", "add", "--help"}, {"ns", "serve", "--help"},
		{"ps", "serve", "--help"}, {"client-token", "create", "--help"}, {"server", "rm", "--help"}, {"help", "get"}} {
		_, stdout, stderr := runGet(t, args...)
		for _, v := range []string{secret, "secret-ns.example", "/secret/ca.pem"} {
			if strings.Contains(stdout+stderr, v) {
				t.Errorf("wharf %s prints %q", strings.Join(args, " "), v)
			}
		}
	}
}
