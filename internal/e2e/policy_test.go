package e2e

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/wharf-project/wharf/internal/api"
)

type globalPolicies struct {
	PackageServer api.PackageServerPolicy `json:"package_server"`
	SiteServer    api.SiteServerPolicy    `json:"site_server"`
}

func TestPolicyCLI(t *testing.T) {
	dir := t.TempDir()
	_, _, env := startNS(t, filepath.Join(dir, "ns"), "")
	startPS(t, env, "ps1", filepath.Join(dir, "ps1"))

	var g globalPolicies
	mustJSON(t, env, &g, "policy", "get")
	if *g.PackageServer.Settings.LinuxLocation != "default" || *g.SiteServer.Settings.DownloadConcurrency != 4 || g.PackageServer.Version != 0 {
		t.Fatalf("defaults: %+v %+v", g.PackageServer, g.SiteServer)
	}
	mustJSON(t, env, &g, "policy", "set", "--download-concurrency", "8", "--all-fixed-drives", "true", "--relocation-mode", "exclusive")
	if *g.SiteServer.Settings.DownloadConcurrency != 8 || !*g.PackageServer.Settings.AllFixedDrives ||
		*g.PackageServer.Settings.RelocationMode != "exclusive" || g.PackageServer.Version != 1 {
		t.Fatalf("after set: %+v %+v", g.PackageServer, g.SiteServer)
	}

	var eff api.EffectivePolicy
	mustJSON(t, env, &eff, "policy", "set", "--server", "ps1", "--download-bandwidth", "10MB/s", "--relocation-mode", "online")
	if *eff.SiteServer.DownloadBandwidth != 10e6 || *eff.PackageServer.RelocationMode != "online" ||
		*eff.SiteServer.DownloadConcurrency != 8 || len(eff.Overridden) != 2 {
		t.Fatalf("override: %+v %+v %v", eff.PackageServer, eff.SiteServer, eff.Overridden)
	}
	text := run(t, env, "policy", "get", "--server", "ps1")
	if text.code != 0 || !strings.Contains(text.stdout, "(override)") || !strings.Contains(text.stdout, "10MiB/s") && !strings.Contains(text.stdout, "9.5MiB/s") {
		t.Fatalf("policy get --server (text): exit %d\n%s", text.code, text.stdout)
	}

	for _, c := range []struct {
		args    []string
		code    int
		message string
	}{
		{[]string{"policy", "set", "--linux-location", "relative/path"}, 1, "linux_location"},
		{[]string{"policy", "set", "--windows-location", `\\server\share`}, 1, "network share"},
		{[]string{"policy", "set", "--all-fixed-drives", "maybe"}, 2, "true or false"},
		{[]string{"policy", "set", "--download-bandwidth", "fast"}, 2, "download-bandwidth"},
		{[]string{"policy", "set"}, 2, "nothing to set"},
		{[]string{"policy", "set", "--server", "ghost", "--relocation-mode", "online"}, 1, "not found"},
		{[]string{"policy", "reset"}, 2, "--server"},
	} {
		r := run(t, env, c.args...)
		if r.code != c.code || !strings.Contains(r.stderr, c.message) {
			t.Errorf("%v: exit %d, stderr %q; want %d and %q", c.args, r.code, r.stderr, c.code, c.message)
		}
	}
	mustJSON(t, env, &g, "policy", "get")
	if g.PackageServer.Version != 1 || *g.PackageServer.Settings.LinuxLocation != "default" {
		t.Fatalf("a refused set changed the policy: %+v", g.PackageServer)
	}

	var reset api.EffectivePolicy
	mustJSON(t, env, &reset, "policy", "reset", "--server", "ps1")
	eff = reset
	if len(eff.Overridden) != 0 || *eff.PackageServer.RelocationMode != "exclusive" || *eff.SiteServer.DownloadBandwidth != 0 {
		t.Fatalf("after reset: %+v %+v %v", eff.PackageServer, eff.SiteServer, eff.Overridden)
	}
}
