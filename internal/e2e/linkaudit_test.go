//go:build linux

package e2e

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wharf-project/wharf/internal/api"
	"github.com/wharf-project/wharf/internal/ps/fsys"
	"github.com/wharf-project/wharf/internal/testenv/loopfs"
	"github.com/wharf-project/wharf/internal/wharf"
)

// TestLinkAuditOnLoopVolumes: a relocation leaves a package that cannot
// move (chattr +i) behind a link on volume A; A is unmounted. The PS's link
// audit finds the package unreachable, and says so in its next health
// report (wharf server show, an alert), in ps status and in the Package
// Location Status of a retry, which does not claim success. A is mounted
// back: the audit is clean. The link is then deleted by hand: the audit
// finds it missing, and a retry relocation mends it by moving the package.
func TestLinkAuditOnLoopVolumes(t *testing.T) {
	loopfs.RequireRoot(t)
	dir := t.TempDir()
	volA := loopfs.Ext4(t, 64)
	volB := loopfs.Ext4(t, 64)
	requireFixedLoops(t, volA)
	_, _, env := startNS(t, filepath.Join(dir, "ns"), "")
	installDir := filepath.Join(dir, "ps")
	cfg := writeConfig(t, dir, "[relocation]\nmax_attempts = 0\n[health]\nlink_audit_interval = \"1s\"\nreport_interval = \"1h\"\n")
	startPS(t, env, "ps1", installDir, "--config", cfg)
	stuck := publishPackage(t, env, dir, "stuck", 3, 64<<10)
	free := publishPackage(t, env, dir, "free", 3, 64<<10)
	for _, p := range []pkgContent{stuck, free} {
		waitPackageReady(t, env, "ps1", p.id, time.Minute)
	}
	targetA, targetB := filepath.Join(volA, "store"), filepath.Join(volB, "store")
	since := setLocation(t, env, "ps1", targetA)
	if ev := waitAttempt(t, env, "ps1", targetA, since, time.Minute); ev.Outcome != api.OutcomeSuccess {
		t.Fatalf("relocation to %s: %+v", targetA, ev)
	}
	immutable := filepath.Join(targetA, stuck.id, "f00.bin")
	if err := fsys.SetImmutable(immutable, true); err != nil {
		t.Fatalf("chattr +i %s: %v", immutable, err)
	}
	t.Cleanup(func() { _ = fsys.SetImmutable(immutable, false) })
	since = setLocation(t, env, "ps1", targetB)
	if ev := waitAttempt(t, env, "ps1", targetB, since, time.Minute); ev.Outcome != api.OutcomeWarning {
		t.Fatalf("relocation to %s with an immutable file: %+v", targetB, ev)
	}
	link := filepath.Join(targetB, stuck.id)
	if dest, err := os.Readlink(link); err != nil || dest != filepath.Join(targetA, stuck.id) {
		t.Fatalf("link %s -> %q, %v", link, dest, err)
	}
	sound := waitHealth(t, env, "a sound link audit", func(h *api.ServerHealth) bool {
		return h.Links != nil && h.Links.Links == 1 && len(h.Links.Problems) == 0
	})
	t.Logf("before: %d package behind a link, audit at %s", sound.Links.Links, sound.Links.At)

	// Volume A goes: the package behind the link is unreachable.
	remount := loopfs.Unmount(t, volA)
	h := waitHealth(t, env, "the audit to find the package unreachable", func(h *api.ServerHealth) bool {
		return h.Links != nil && h.Links.Counts[api.LinkTargetUnavailable] == 1
	})
	if p := h.Links.Problems[0]; p.PackageID != stuck.id || p.Kind != api.LinkTargetUnavailable || p.Link != link || p.Name != "stuck" {
		t.Errorf("problem reported: %+v", p)
	}
	if r := run(t, env, "server", "show", "ps1"); !strings.Contains(r.stdout, "1 target-unavailable") || !strings.Contains(r.stdout, "mount it back") {
		t.Errorf("server show does not report the unreachable package:\n%s", r.stdout)
	}
	waitAlert(t, env, "packages left behind links are not served")
	if st := psStatus(t, env, installDir); st.Links == nil || st.Links.Counts[api.LinkTargetUnavailable] != 1 {
		t.Errorf("ps status links: %+v", st.Links)
	}
	// A retry cannot move it; its event carries the audit and says the
	// package stays behind its link, not "success".
	since = time.Now()
	if r := run(t, env, "server", "retry-relocation", "ps1"); r.code != 0 {
		t.Fatal(r.stderr)
	}
	ev := waitAttempt(t, env, "ps1", targetB, since, time.Minute, func(ls *api.LocationStatus) bool {
		return wharf.RelocationStatus(ls.LastStatus).Has(wharf.RelocationManual)
	})
	if ev.Outcome != api.OutcomeWarning || ev.Links == nil || ev.Links.Counts[api.LinkTargetUnavailable] != 1 ||
		!slices.ContainsFunc(ev.Packages, func(p api.RelocationPackage) bool {
			return p.PackageID == stuck.id && p.State == api.RelocationLinked && strings.Contains(p.Reason, "unavailable")
		}) {
		t.Errorf("retry while volume A is away: outcome %q, links %+v, packages %+v", ev.Outcome, ev.Links, ev.Packages)
	}

	// Volume A is back: the audit is clean again.
	remount()
	waitHealth(t, env, "a clean audit once the volume is back", func(h *api.ServerHealth) bool {
		return h.Links != nil && h.Links.Links == 1 && len(h.Links.Problems) == 0
	})

	// The link is deleted by hand: missing, and a retry mends it.
	if err := os.Remove(link); err != nil {
		t.Fatal(err)
	}
	waitHealth(t, env, "the audit to find the link missing", func(h *api.ServerHealth) bool {
		return h.Links != nil && h.Links.Counts[api.LinkMissing] == 1
	})
	waitAlert(t, env, "link audit: link-missing")
	if err := fsys.SetImmutable(immutable, false); err != nil {
		t.Fatal(err)
	}
	since = time.Now()
	if r := run(t, env, "server", "retry-relocation", "ps1"); r.code != 0 {
		t.Fatal(r.stderr)
	}
	ev = waitAttempt(t, env, "ps1", targetB, since, time.Minute, func(ls *api.LocationStatus) bool {
		return wharf.RelocationStatus(ls.LastStatus).Has(wharf.RelocationManual)
	})
	if ev.Outcome != api.OutcomeSuccess {
		t.Errorf("retry after the link went: %+v", ev)
	}
	verifyAt(t, link, stuck)
	if fi, err := os.Lstat(link); err != nil || !fi.IsDir() {
		t.Errorf("%s after the retry: %v, want the package's folder", link, err)
	}
	waitHealth(t, env, "no package behind a link after the mend", func(h *api.ServerHealth) bool {
		return h.Links != nil && h.Links.Links == 0
	})
}

// waitHealth polls `wharf server show` until the server's health passes ok.
func waitHealth(t *testing.T, env []string, what string, ok func(*api.ServerHealth) bool) *api.ServerHealth {
	t.Helper()
	var last *api.ServerHealth
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		var srv api.Server
		mustJSON(t, env, &srv, "server", "show", "ps1", "--limit", "0")
		if last = srv.Health; last != nil && ok(last) {
			return last
		}
	}
	t.Fatalf("waited a minute for %s; last health %+v", what, last)
	return nil
}

// waitAlert waits for an unread alert whose message contains text.
func waitAlert(t *testing.T, env []string, text string) {
	t.Helper()
	var list api.AlertList
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		mustJSON(t, env, &list, "alert", "ls", "--unread")
		for _, a := range list.Alerts {
			if strings.Contains(a.Message, text) {
				return
			}
		}
	}
	t.Errorf("no alert saying %q; alerts: %+v", text, list.Alerts)
}
