//go:build linux

package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/wharf-project/wharf/internal/api"
	"github.com/wharf-project/wharf/internal/apiclient"
	"github.com/wharf-project/wharf/internal/ps/admin"
	"github.com/wharf-project/wharf/internal/ps/fsys"
	"github.com/wharf-project/wharf/internal/ps/relocate"
	"github.com/wharf-project/wharf/internal/ps/store"
	"github.com/wharf-project/wharf/internal/ps/storeroot"
	"github.com/wharf-project/wharf/internal/ps/volume"
	"github.com/wharf-project/wharf/internal/publish"
	"github.com/wharf-project/wharf/internal/testenv/loopfs"
	"github.com/wharf-project/wharf/internal/wharf"
)

// Relocation end to end, as root, on loop-mounted volumes: a real NS and a
// real PS (`wharf ps serve`), driven through the CLI. Mounts are made
// before the processes start, so the processes are stopped (t.Cleanup is
// last-in first-out) before anything is unmounted.

// pkgContent is a published package: its id and files.
type pkgContent struct {
	id    string
	files map[string][]byte
}

// publishPackage publishes nfiles random files of size bytes as package
// name and returns it.
func publishPackage(t testing.TB, env []string, dir, name string, nfiles, size int) pkgContent {
	t.Helper()
	tree := filepath.Join(dir, "trees", name)
	files := map[string][]byte{}
	for i := range nfiles {
		rel := fmt.Sprintf("f%02d.bin", i)
		if i%3 == 1 {
			rel = fmt.Sprintf("sub/dir %d/f%02d.bin", i%2, i)
		}
		b := make([]byte, size)
		rand.Read(b)
		files[rel] = b
		p := filepath.Join(tree, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var res publish.Result
	// Public: the tests download straight from the PS, without a token.
	mustJSON(t, env, &res, "package", "add", tree, "--name", name, "--version", "1", "--public")
	return pkgContent{id: res.Package.ID, files: files}
}

// verifyAt checks that folder holds exactly the package's files.
func verifyAt(t testing.TB, folder string, p pkgContent) {
	t.Helper()
	seen := 0
	if real, err := filepath.EvalSymlinks(folder); err == nil {
		folder = real // a package behind a link: its files are where it leads
	}
	err := filepath.WalkDir(folder, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(folder, path)
		want, ok := p.files[filepath.ToSlash(rel)]
		if !ok {
			t.Errorf("package %s: %s is not in the manifest", p.id, path)
			return nil
		}
		got, err := os.ReadFile(path)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("package %s: %s differs from what was published (%d bytes, %v)", p.id, path, len(got), err)
		}
		seen++
		return nil
	})
	if err != nil {
		t.Errorf("package %s at %s: %v", p.id, folder, err)
	}
	if seen != len(p.files) {
		t.Errorf("package %s at %s: %d of %d files", p.id, folder, seen, len(p.files))
	}
}

func psStatus(t testing.TB, env []string, installDir string) admin.Status {
	t.Helper()
	var st admin.Status
	mustJSON(t, env, &st, "ps", "status", "--install-dir", installDir)
	return st
}

// latestLocation returns the latest Package Location Status the NS holds
// for server.
func latestLocation(t testing.TB, env []string, server string) *api.LocationStatus {
	t.Helper()
	var s api.Server
	mustJSON(t, env, &s, "server", "show", server)
	return s.LocationStatus
}

// waitAttempt waits until the NS holds the event ending an attempt toward
// target that started at or after since, and returns it.
func waitAttempt(t testing.TB, env []string, server, target string, since time.Time, timeout time.Duration, more ...func(*api.LocationStatus) bool) api.LocationStatus {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last *api.LocationStatus
	for {
		ls := latestLocation(t, env, server)
		if ls != nil && ls.StoragePath == target && ls.Progress == nil &&
			!wharf.RelocationStatus(ls.LastStatus).Has(wharf.RelocationInProgress) && !ls.LastAttempt.Before(since) {
			ok := true
			for _, f := range more {
				ok = ok && f(ls)
			}
			if ok {
				return *ls
			}
		}
		last = ls
		if time.Now().After(deadline) {
			t.Fatalf("no attempt toward %s ended on %s within %s; latest event: %+v", target, server, timeout, last)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// setLocation sets the server's Linux storage location and returns when.
func setLocation(t testing.TB, env []string, server, loc string) time.Time {
	t.Helper()
	now := time.Now()
	if r := run(t, env, "policy", "set", "--server", server, "--linux-location", loc); r.code != 0 {
		t.Fatalf("policy set --linux-location %s: exit %d: %s", loc, r.code, r.stderr)
	}
	return now
}

// requireFixedLoops skips the test when loop volumes do not count as fixed
// media on this host (their images on a tmpfs or an overlay): a PS process
// sees the real volume facts.
func requireFixedLoops(t testing.TB, dir string) {
	t.Helper()
	info, err := volume.New().Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !info.Fixed {
		t.Skipf("loop volumes are not fixed media here (%s): set WHARF_LOOPFS_DIR to a folder on a disk", info.FixedReason)
	}
}

func writeConfig(t testing.TB, dir, body string) string {
	t.Helper()
	p := filepath.Join(dir, "ps.toml")
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestRelocationOnRealVolumes is issue 6's integration test: packages
// rotated over two ext4 volumes; targets refused for each prerequisite
// (nothing moves); a relocation to a third volume that consolidates the
// store; two packages that cannot move (chattr +i) linked, served, retried
// automatically until the retries are used up, then moved by a manual retry
// that does not count.
func TestRelocationOnRealVolumes(t *testing.T) {
	loopfs.RequireRoot(t)
	dir := t.TempDir()
	volP := loopfs.Ext4(t, 48)  // the install dir: fills up
	volR := loopfs.Ext4(t, 64)  // takes rotated packages
	volT := loopfs.Ext4(t, 160) // the target
	volU := loopfs.Ext4(t, 160) // the target of the chattr part
	small := loopfs.Ext4(t, 24)
	fat := loopfs.FAT(t, 160)
	ram := loopfs.Tmpfs(t, 160)
	requireFixedLoops(t, volP)

	_, nsURL, env := startNS(t, filepath.Join(dir, "ns"), "")
	installDir := filepath.Join(volP, "wharf")
	cfg := writeConfig(t, dir, fmt.Sprintf(`[storage]
reserve = "5%%"
volumes = [%q]
[relocation]
max_attempts = 2
interval = "2s"
`, volR))
	_, psURL := startPS(t, env, "ps1", installDir, "--config", cfg)
	if r := run(t, env, "policy", "set", "--all-fixed-drives", "true"); r.code != 0 {
		t.Fatalf("policy set --all-fixed-drives: %s", r.stderr)
	}

	// 12 packages of 4 MiB: the 48 MiB primary volume takes what fits
	// above its reserve, the rest rotates onto volR.
	var pkgs []pkgContent
	for i := range 12 {
		p := publishPackage(t, env, dir, fmt.Sprintf("pkg%02d", i), 4, 1<<20)
		waitPackageReady(t, env, "ps1", p.id, 2*time.Minute)
		pkgs = append(pkgs, p)
	}
	defLoc := filepath.Join(installDir, "Package Delivery")
	rotLoc := filepath.Join(volR, "Package Delivery")
	st := psStatus(t, env, installDir)
	if len(st.Locations) != 2 || st.Locations[0].Root != defLoc || st.Locations[1].Root != rotLoc || st.StoragePath != defLoc {
		t.Fatalf("after publishing: storage path %s, locations %+v; want the packages over %s and %s", st.StoragePath, st.Locations, defLoc, rotLoc)
	}
	t.Logf("rotation: %d packages in %s, %d in %s", st.Locations[0].Packages, defLoc, st.Locations[1].Packages, rotLoc)
	before := map[string]string{}
	for _, p := range st.Packages {
		before[p.ID] = p.Path
	}
	nothingMoved := func(target string) {
		t.Helper()
		for _, p := range psStatus(t, env, installDir).Packages {
			if p.Path != before[p.ID] || p.Link != "" {
				t.Errorf("after a refused attempt to %s: package %s at %s (link %q), was at %s", target, p.ID, p.Path, p.Link, before[p.ID])
			}
		}
		es, _ := os.ReadDir(target)
		for _, e := range es {
			if e.Name() != "lost+found" {
				t.Errorf("after a refused attempt: %s holds %s", target, e.Name())
			}
		}
	}

	// A target path so long that the longest package path below it
	// exceeds 4095 bytes: nested folders of 255-byte names on volT.
	long := filepath.Join(volT, "long")
	for len(long) < 4050-256 {
		long = filepath.Join(long, strings.Repeat("d", 255))
	}
	long = filepath.Join(long, strings.Repeat("e", 4050-len(long)-1))
	if err := os.MkdirAll(long, 0o755); err != nil {
		t.Fatalf("make a %d-byte path: %v", len(long), err)
	}

	// The NS refuses a known folder as it is written (SPEC §6.1.4), before
	// saving; one reached through a link is the Package Server's to refuse.
	if r := run(t, env, "policy", "set", "--server", "ps1", "--linux-location", "/etc/wharf"); r.code != 1 || !strings.Contains(r.stderr, "known-folder") {
		t.Errorf("policy set --linux-location /etc/wharf: exit %d, %s; want 1, refused as a known folder", r.code, r.stderr)
	}
	etcLink := filepath.Join(t.TempDir(), "etc-link")
	if err := os.Symlink("/etc", etcLink); err != nil {
		t.Fatal(err)
	}
	knownTarget := filepath.Join(etcLink, "wharf")

	for _, c := range []struct {
		name, target string
		want         wharf.RelocationStatus
	}{
		{"vfat", filepath.Join(fat, "wharf"), wharf.RelocationUnsupportedFilesystem},
		{"tmpfs", filepath.Join(ram, "wharf"), wharf.RelocationNotFixedMedia | wharf.RelocationUnsupportedFilesystem},
		{"known folder", knownTarget, wharf.RelocationKnownFolder},
		{"too small", filepath.Join(small, "wharf"), wharf.RelocationInsufficientSpace},
		{"path too long", long, wharf.RelocationPathTooLong},
		// A name over 255 bytes: only the path check fails (issue 16: the
		// volume could not be told, so fixed media, file system, space
		// and the target failed too).
		{"name too long", filepath.Join(volT, strings.Repeat("n", 300), "store"), wharf.RelocationPathTooLong},
	} {
		// The plan says it first, and the attempt then does the same.
		var plan relocate.Plan
		r := run(t, env, "ps", "relocate", "--plan", c.target, "--install-dir", installDir, "--json")
		if err := json.Unmarshal([]byte(r.stdout), &plan); err != nil || r.code != 1 {
			t.Fatalf("%s: ps relocate --plan: exit %d, %v: %s %s", c.name, r.code, err, r.stdout, r.stderr)
		}
		if !plan.Status.Has(c.want) {
			t.Errorf("%s: plan %s, want %s", c.name, plan.Status, c.want)
		}
		since := setLocation(t, env, "ps1", c.target)
		ev := waitAttempt(t, env, "ps1", c.target, since, time.Minute)
		got := wharf.RelocationStatus(ev.LastStatus)
		extra := got &^ c.want
		if c.target == knownTarget {
			extra &^= wharf.RelocationInsufficientSpace // the host's root volume may be short of its 5% reserve
		}
		if !got.Has(c.want) || extra != 0 {
			t.Errorf("%s: attempt status %s, want %s (message %q)", c.name, got, c.want, ev.Message)
		}
		if got := wharf.RelocationStatus(ev.LastStatus); got != plan.Status {
			t.Errorf("%s: the attempt (%s) and the plan (%s) differ", c.name, got, plan.Status)
		}
		if len(ev.Prerequisites) != 6 || len(ev.Packages) != 0 || ev.LastStatusFlags == nil {
			t.Errorf("%s: event %+v", c.name, ev)
		}
		if c.target != knownTarget {
			nothingMoved(c.target)
		} else if _, err := os.Lstat("/etc/wharf"); err == nil {
			t.Errorf("a refused attempt created /etc/wharf")
		}
	}

	// The relocation to a third volume: every package, rotated ones too.
	target := filepath.Join(volT, "store")
	since := setLocation(t, env, "ps1", target)
	ev := waitAttempt(t, env, "ps1", target, since, 3*time.Minute)
	if got, want := wharf.RelocationStatus(ev.LastStatus), wharf.RelocationSuccess|wharf.RelocationConsolidated; got != want {
		t.Fatalf("relocation to %s: status %s, want %s: %+v", target, got, want, ev)
	}
	for _, p := range pkgs {
		verifyAt(t, filepath.Join(target, p.id), p)
		for _, old := range []string{defLoc, rotLoc} {
			if _, err := os.Lstat(filepath.Join(old, p.id)); err == nil {
				t.Errorf("package %s still at %s", p.id, old)
			}
		}
	}
	st = psStatus(t, env, installDir)
	if st.StoragePath != target || len(st.Locations) != 1 || st.Locations[0].Root != target || st.Locations[0].Packages != 12 {
		t.Errorf("ps status after the relocation: storage path %s, locations %+v", st.StoragePath, st.Locations)
	}
	if st.Relocation == nil || st.Relocation.JournalOpen != 0 || !slices.Contains(st.Relocation.LastStatusFlags, "consolidated") {
		t.Errorf("ps status relocation: %+v", st.Relocation)
	}
	checkEventFields(t, ev, target, pkgs, 2)
	if text := run(t, env, "server", "show", "ps1"); !strings.Contains(text.stdout, "Storage path:  "+target+"\n") ||
		!strings.Contains(text.stdout, "Target of the attempt:  "+target) ||
		!strings.Contains(text.stdout, "success, consolidated") {
		t.Errorf("wharf server show:\n%s", text.stdout)
	}
	if text := run(t, env, "ps", "status", "--install-dir", installDir); !strings.Contains(text.stdout, "Storage path:  "+target) {
		t.Errorf("wharf ps status:\n%s", text.stdout)
	}

	// Two packages that cannot move: a file of each is immutable.
	stuck := []pkgContent{pkgs[3], pkgs[10]}
	var stuckFiles []string
	for _, p := range stuck {
		f := filepath.Join(target, p.id, "f00.bin")
		if err := fsys.SetImmutable(f, true); err != nil {
			t.Fatalf("chattr +i %s: %v", f, err)
		}
		stuckFiles = append(stuckFiles, f)
	}
	t.Cleanup(func() { // before the volumes are unmounted
		for _, f := range stuckFiles {
			_ = fsys.SetImmutable(f, false)
		}
	})
	target2 := filepath.Join(volU, "store")
	since = setLocation(t, env, "ps1", target2)
	ev = waitAttempt(t, env, "ps1", target2, since, 3*time.Minute)
	if got := wharf.RelocationStatus(ev.LastStatus); got != wharf.RelocationSomeNotMoved || ev.Message != wharf.RelocationWarning {
		t.Fatalf("relocation with two immutable files: status %s, message %q", got, ev.Message)
	}
	linked := 0
	for _, p := range ev.Packages {
		if p.State == api.RelocationLinked {
			linked++
			if !strings.Contains(p.Reason, "not-removable") {
				t.Errorf("linked package %s: reason %q", p.PackageID, p.Reason)
			}
		}
	}
	if linked != 2 {
		t.Errorf("%d packages linked, want 2: %+v", linked, ev.Packages)
	}
	for _, p := range stuck {
		l := filepath.Join(target2, p.id)
		if dest, err := os.Readlink(l); err != nil || dest != filepath.Join(target, p.id) {
			t.Errorf("link %s -> %q, %v; want -> %s", l, dest, err, filepath.Join(target, p.id))
		}
		verifyAt(t, l, p) // through the link
		dest := filepath.Join(dir, "get-"+p.id)
		if r := run(t, env, "get", p.id, "--dest", dest); r.code != 0 {
			t.Errorf("wharf get %s behind a link: exit %d: %s", p.id, r.code, r.stderr)
		} else {
			verifyAt(t, dest, p)
		}
	}
	// And one straight from the PS, through the link.
	resp, err := http.Get(psURL + "/packages/" + stuck[0].id + "/f00.bin")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !bytes.Equal(body, stuck[0].files["f00.bin"]) {
		t.Errorf("GET a linked package's file: %d, %d bytes", resp.StatusCode, len(body))
	}

	// Automatic retries every 2 s, two of them, each on the linked
	// packages only; then retries-exhausted.
	ev = waitAttempt(t, env, "ps1", target2, since, time.Minute, func(ls *api.LocationStatus) bool { return ls.AttemptsDone == 2 })
	if got := wharf.RelocationStatus(ev.LastStatus); got != wharf.RelocationSomeNotMoved|wharf.RelocationRetriesExhausted || ev.MaxAttempts != 2 {
		t.Errorf("after the automatic retries: status %s, %d of %d", got, ev.AttemptsDone, ev.MaxAttempts)
	}
	c, err := apiclient.New(nsURL, envValue(env, "WHARF_TOKEN"), nil)
	if err != nil {
		t.Fatal(err)
	}
	hist, err := c.LocationHistory(context.Background(), "ps1", 0)
	if err != nil {
		t.Fatal(err)
	}
	var retries []api.LocationStatus
	for _, h := range hist.Events {
		if h.StoragePath == target2 && h.AttemptsDone > 0 {
			retries = append(retries, h)
		}
	}
	if len(retries) != 2 {
		t.Errorf("%d automatic retries in the history, want 2", len(retries))
	}
	for _, r := range retries {
		if len(r.Packages) != 2 {
			t.Errorf("automatic retry %d touched %d packages, want the 2 linked ones", r.AttemptsDone, len(r.Packages))
		}
	}
	time.Sleep(3 * time.Second) // no third automatic retry
	if ls := latestLocation(t, env, "ps1"); ls.AttemptsDone != 2 || !ls.LastAttempt.Equal(ev.LastAttempt) {
		t.Errorf("an automatic retry beyond max_attempts: %+v", ls)
	}

	// The attribute goes; a manual retry moves them without counting.
	for _, f := range stuckFiles {
		if err := fsys.SetImmutable(f, false); err != nil {
			t.Fatal(err)
		}
	}
	since = time.Now()
	if r := run(t, env, "ps", "retry-relocation", "--install-dir", installDir); r.code != 0 {
		t.Fatalf("ps retry-relocation: exit %d: %s", r.code, r.stderr)
	}
	ev = waitAttempt(t, env, "ps1", target2, since, time.Minute)
	if got := wharf.RelocationStatus(ev.LastStatus); got != wharf.RelocationSuccess|wharf.RelocationManual || ev.AttemptsDone != 2 {
		t.Errorf("manual retry: status %s, attempts %d (want success|manual, 2)", got, ev.AttemptsDone)
	}
	for _, p := range pkgs {
		verifyAt(t, filepath.Join(target2, p.id), p)
		if fi, err := os.Lstat(filepath.Join(target2, p.id)); err != nil || fsys.IsLink(fi) {
			t.Errorf("package %s at %s is not a folder: %v", p.id, target2, err)
		}
		if _, err := os.Lstat(filepath.Join(target, p.id)); err == nil {
			t.Errorf("package %s still at %s", p.id, target)
		}
	}
	st = psStatus(t, env, installDir)
	if len(st.Locations) != 1 || st.Locations[0].Root != target2 || st.Relocation.AttemptsDone != 2 {
		t.Errorf("ps status after the manual retry: locations %+v, relocation %+v", st.Locations, st.Relocation)
	}
	metrics, err := admin.NewClient(admin.SocketPath(installDir)).Metrics(context.Background())
	if err != nil || !strings.Contains(metrics, `wharf_relocation_attempts_total{kind="automatic",result="warning"} 2`) ||
		!strings.Contains(metrics, `wharf_relocation_attempts_total{kind="manual",result="success"} 1`) {
		t.Errorf("metrics: %v\n%s", err, grepLines(metrics, "wharf_relocation"))
	}
}

func envValue(env []string, key string) string {
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, key+"="); ok {
			return v
		}
	}
	return ""
}

func grepLines(s, substr string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, substr) && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// checkEventFields checks every field of SPEC §6.7 against statfs and the
// published bytes.
func checkEventFields(t *testing.T, ev api.LocationStatus, target string, pkgs []pkgContent, maxAttempts int) {
	t.Helper()
	var fs syscall.Statfs_t
	if err := syscall.Statfs(target, &fs); err != nil {
		t.Fatal(err)
	}
	total := int64(fs.Blocks) * fs.Bsize >> 20
	free := int64(fs.Bavail) * fs.Bsize >> 20
	var bytes int64
	for _, p := range pkgs {
		for _, b := range p.files {
			bytes += int64(len(b))
		}
	}
	mib := bytes >> 20
	near := func(a, b int64) bool { return a-b <= 1 && b-a <= 1 }
	if ev.StoragePath != target || !near(ev.VolumeTotalMB, total) || !near(ev.VolumeFreeMB, free) ||
		!near(ev.PSUsedMB, mib) || !near(ev.VolumeRequiredMB, mib) || ev.MaxAttempts != maxAttempts || ev.AttemptsDone != 0 ||
		time.Since(ev.LastAttempt) > 5*time.Minute || !slices.Equal(ev.LastStatusFlags, wharf.RelocationStatus(ev.LastStatus).Names()) {
		t.Errorf("event fields: path %s, total %d (statfs %d), free %d (statfs %d), used %d and required %d (packages %d MiB), attempts %d/%d, last %s, flags %v",
			ev.StoragePath, ev.VolumeTotalMB, total, ev.VolumeFreeMB, free, ev.PSUsedMB, ev.VolumeRequiredMB, mib,
			ev.AttemptsDone, ev.MaxAttempts, ev.LastAttempt, ev.LastStatusFlags)
	}
	moved := 0
	for _, p := range ev.Packages {
		if p.State == api.RelocationMoved && p.Path == filepath.Join(target, p.PackageID) {
			moved++
		}
	}
	if moved != len(pkgs) || len(ev.Prerequisites) != 6 {
		t.Errorf("event: %d packages moved of %d, %d prerequisites", moved, len(pkgs), len(ev.Prerequisites))
	}
}

// psArgs are the arguments of a `wharf ps serve` after the first start.
func psArgs(installDir, addr, cfg string) []string {
	return []string{"ps", "serve", "--install-dir", installDir, "--addr", addr, "--config", cfg}
}

// TestRelocationSurvivesSIGKILL kills `wharf ps serve` with SIGKILL at many
// points of relocations between two volumes (after a delay that changes from
// run to run, so the kills land in copies, renames, switches, removals and
// in Recover itself), restarts it every time, and flips the target whenever
// a relocation has finished. At the end every package must be whole at the
// last target and nowhere else, with no temporary folder left and the
// journal closed.
func TestRelocationSurvivesSIGKILL(t *testing.T) {
	loopfs.RequireRoot(t)
	dir := t.TempDir()
	volA := loopfs.Ext4(t, 96)
	volB := loopfs.Ext4(t, 96)
	requireFixedLoops(t, volA)
	runs := 50
	if testing.Short() {
		runs = 10
	}

	_, _, env := startNS(t, filepath.Join(dir, "ns"), "")
	installDir := filepath.Join(dir, "ps")
	// A bandwidth limit stretches a relocation of these 6 MiB to about a
	// second, so the kills spread over it.
	cfg := writeConfig(t, dir, "[relocation]\nbandwidth = \"6MiB/s\"\ninterval = \"1s\"\n")
	first, _ := startPS(t, env, "ps1", installDir, "--config", cfg)
	var pkgs []pkgContent
	for i := range 24 {
		p := publishPackage(t, env, dir, fmt.Sprintf("crash%02d", i), 16, 16<<10)
		pkgs = append(pkgs, p)
	}
	for _, p := range pkgs {
		waitPackageReady(t, env, "ps1", p.id, 2*time.Minute)
	}
	first.kill()
	addr := freePort(t)
	// The files' times as the downloads recorded them: a package
	// downloaded again (had relocation lost it) would change them.
	mtimes := fileTimes(t, installDir)

	targets := []string{filepath.Join(volA, "store"), filepath.Join(volB, "store")}
	cur := 0
	setLocation(t, env, "ps1", targets[cur])
	flips, kills, resumed := 0, 0, 0
	for kills < runs {
		// Every other run copies at full speed, so the kills also land
		// in the short steps after a copy (switch, removal of the old
		// folder) and in Recover itself; the others are throttled, so
		// they land anywhere in a copy.
		limited := kills%2 == 0
		delay := time.Duration(kills*37%150) * time.Millisecond
		cfgBody := "[relocation]\ninterval = \"1s\"\n"
		if limited {
			cfgBody += "bandwidth = \"6MiB/s\"\n"
			delay = time.Duration(kills*137%1100) * time.Millisecond
		}
		writeConfig(t, dir, cfgBody)
		p, _ := start(t, regexp.MustCompile(`serving on`), nil, psArgs(installDir, addr, cfg)...)
		st := psStatus(t, env, installDir)
		switch r := st.Relocation; {
		case r == nil:
			t.Fatal("ps status without relocation state")
		case r.Running:
			resumed++ // killed mid-attempt last time; going on
		case r.StoragePath == targets[cur] && r.LastStatus&uint32(wharf.RelocationSuccess) != 0:
			cur = 1 - cur
			flips++
			setLocation(t, env, "ps1", targets[cur])
		}
		time.Sleep(delay)
		p.cmd.Process.Signal(syscall.SIGKILL)
		<-p.done
		kills++
	}
	t.Logf("%d SIGKILLs: %d restarts found an attempt under way, %d relocations finished between them", kills, resumed, flips)
	if flips < 2 || resumed < runs/3 {
		t.Errorf("%d relocations finished, %d restarts resumed one, in %d kills: the kills did not spread over several relocations", flips, resumed, kills)
	}

	// The last start runs to the end.
	p, _ := start(t, regexp.MustCompile(`serving on`), nil, psArgs(installDir, addr, cfg)...)
	deadline := time.Now().Add(2 * time.Minute)
	for {
		st := psStatus(t, env, installDir)
		if r := st.Relocation; r != nil && !r.Running && r.StoragePath == targets[cur] && r.LastStatus&uint32(wharf.RelocationSuccess) != 0 && r.JournalOpen == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the relocation to %s did not finish after the last restart: %+v", targets[cur], st.Relocation)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err := p.stop(t); err != nil {
		t.Fatalf("stop: %v", err)
	}

	final := targets[cur]
	roots := []string{filepath.Join(installDir, "Package Delivery"), targets[0], targets[1]}
	for _, pk := range pkgs {
		found := 0
		for _, r := range roots {
			if _, err := os.Lstat(filepath.Join(r, pk.id)); err == nil {
				found++
				if r != final {
					t.Errorf("package %s is at %s, not only at %s", pk.id, r, final)
				}
			}
		}
		if found != 1 {
			t.Errorf("package %s found %d times", pk.id, found)
		}
		verifyAt(t, filepath.Join(final, pk.id), pk)
	}
	for _, r := range roots {
		for _, tmp := range []string{storeroot.RelocateDir, storeroot.TrashDir, storeroot.DownloadDir} {
			es, _ := os.ReadDir(filepath.Join(r, tmp))
			if len(es) > 0 {
				t.Errorf("%s holds %d entries after the last relocation", filepath.Join(r, tmp), len(es))
			}
		}
	}
	st, err := store.Open(context.Background(), filepath.Join(installDir, "state", "ps.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if open, err := st.RelocationJournal().List(context.Background()); err != nil || len(open) != 0 {
		t.Errorf("journal: %d entries open, %v: %+v", len(open), err, open)
	}
	for _, pk := range pkgs {
		got, ok := st.Get(pk.id)
		if !ok || got.Path != filepath.Join(final, pk.id) || got.State != api.StateReady {
			t.Errorf("state DB: package %s at %s (%s)", pk.id, got.Path, got.State)
		}
		for _, f := range got.Files {
			if !f.ModTime.Equal(mtimes[pk.id+"/"+f.Path]) {
				t.Errorf("package %s file %s was downloaded again (recorded %v, first %v)", pk.id, f.Path, f.ModTime, mtimes[pk.id+"/"+f.Path])
			}
		}
	}
}

// fileTimes returns the modification time the state DB recorded for every
// file of every package, by "<id>/<path>".
func fileTimes(t *testing.T, installDir string) map[string]time.Time {
	t.Helper()
	st, err := store.Open(context.Background(), filepath.Join(installDir, "state", "ps.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	out := map[string]time.Time{}
	for _, p := range st.List() {
		full, _ := st.Get(p.ID)
		for _, f := range full.Files {
			out[p.ID+"/"+f.Path] = f.ModTime
		}
	}
	return out
}

// TestServingDuringRelocation downloads package files in a loop from a
// real PS while it relocates its store — by rename on one volume, by copy
// to another volume and back — and requires that not one request fails;
// then, in exclusive mode, that package requests answer 503 with
// Retry-After during the attempt and are served again after it.
func TestServingDuringRelocation(t *testing.T) {
	loopfs.RequireRoot(t)
	dir := t.TempDir()
	volA := loopfs.Ext4(t, 128)
	volB := loopfs.Ext4(t, 128)
	requireFixedLoops(t, volA)
	_, _, env := startNS(t, filepath.Join(dir, "ns"), "")
	installDir := filepath.Join(volA, "wharf")
	cfg := writeConfig(t, dir, "[relocation]\nbandwidth = \"20MiB/s\"\n")
	_, psURL := startPS(t, env, "ps1", installDir, "--config", cfg)

	const npkgs, nfiles, size = 100, 4, 64 << 10
	var pkgs []pkgContent
	for i := range npkgs {
		pkgs = append(pkgs, publishPackage(t, env, dir, fmt.Sprintf("serve%03d", i), nfiles, size))
	}
	for _, p := range pkgs {
		waitPackageReady(t, env, "ps1", p.id, 2*time.Minute)
	}

	var requests, failures atomic.Int64
	var unavailable atomic.Int64
	var wg sync.WaitGroup
	stop := make(chan struct{})
	exclusive := atomic.Bool{}
	client := &http.Client{Timeout: 30 * time.Second}
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; ; i += 7 {
				select {
				case <-stop:
					return
				default:
				}
				p := pkgs[i%len(pkgs)]
				rels := slices.Sorted(maps.Keys(p.files))
				rel := rels[i%len(rels)]
				resp, err := client.Get(psURL + "/packages/" + p.id + "/" + strings.ReplaceAll(rel, " ", "%20"))
				if err != nil {
					failures.Add(1)
					t.Errorf("GET %s/%s: %v", p.id, rel, err)
					continue
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				requests.Add(1)
				switch {
				case resp.StatusCode == 200 && bytes.Equal(body, p.files[rel]):
				case resp.StatusCode == 503 && exclusive.Load() && resp.Header.Get("Retry-After") != "":
					unavailable.Add(1)
				default:
					failures.Add(1)
					t.Errorf("GET %s/%s during a relocation: %d, %d bytes: %.200s", p.id, rel, resp.StatusCode, len(body), body)
				}
			}
		}()
	}
	targets := []struct {
		path, how string
	}{
		{filepath.Join(volA, "moved"), "rename"},
		{filepath.Join(volB, "store"), "copy"},
		{filepath.Join(volA, "back"), "copy"},
		{filepath.Join(volA, "again"), "rename"},
	}
	for _, tg := range targets {
		// The NS's check of the target first: its verdict and counts are
		// what the relocation then does.
		var plan api.LocationPlan
		mustJSON(t, env, &plan, "server", "check-location", "ps1", tg.path)
		copies, renames := plan.CopyPackages, plan.RenamePackages
		if plan.Status != 0 || (tg.how == "copy") != (copies == npkgs && renames == 0) || (tg.how == "rename") != (renames == npkgs && copies == 0) {
			t.Errorf("check-location %s: %+v", tg.path, plan)
		}
		since := setLocation(t, env, "ps1", tg.path)
		if tg.how == "copy" {
			// While it copies (20 MiB/s), the NS and ps status show the
			// progress.
			sawNS, sawPS := false, false
			for deadline := time.Now().Add(time.Minute); !(sawNS && sawPS) && time.Now().Before(deadline); {
				if ls := latestLocation(t, env, "ps1"); ls != nil && ls.StoragePath == tg.path && ls.Progress != nil &&
					ls.Progress.PackagesTotal == npkgs && wharf.RelocationStatus(ls.LastStatus).Has(wharf.RelocationInProgress) {
					sawNS = true
				}
				if r := psStatus(t, env, installDir).Relocation; r != nil && r.Running && r.Event != nil && r.Event.Progress != nil &&
					r.Event.Progress.BytesTotal == int64(npkgs*nfiles*size) {
					sawPS = true
				}
				if ls := latestLocation(t, env, "ps1"); ls != nil && ls.StoragePath == tg.path && ls.Progress == nil {
					break // over already
				}
			}
			if !sawNS || !sawPS {
				t.Errorf("relocation to %s: progress seen at the NS %v, in ps status %v", tg.path, sawNS, sawPS)
			}
		}
		ev := waitAttempt(t, env, "ps1", tg.path, since, 3*time.Minute)
		if got := wharf.RelocationStatus(ev.LastStatus); !got.Has(wharf.RelocationSuccess) {
			t.Fatalf("relocation to %s (%s): %s %s", tg.path, tg.how, got, ev.Message)
		}
		t.Logf("relocated %d packages to %s by %s; %d requests so far, %d failed", npkgs, tg.path, tg.how, requests.Load(), failures.Load())
	}
	if failures.Load() != 0 {
		t.Fatalf("%d of %d requests failed during online relocations", failures.Load(), requests.Load())
	}
	// A manual retry from the NS, as a server task: nothing left behind a
	// link, so a success, manual, not counted.
	since := time.Now()
	if r := run(t, env, "server", "retry-relocation", "ps1"); r.code != 0 {
		t.Fatalf("server retry-relocation: %s", r.stderr)
	}
	last := targets[len(targets)-1].path
	ev := waitAttempt(t, env, "ps1", last, since, time.Minute, func(ls *api.LocationStatus) bool {
		return wharf.RelocationStatus(ls.LastStatus).Has(wharf.RelocationManual)
	})
	if got := wharf.RelocationStatus(ev.LastStatus); got != wharf.RelocationSuccess|wharf.RelocationManual || ev.AttemptsDone != 0 {
		t.Errorf("retry-relocation task: %s, %d attempts", got, ev.AttemptsDone)
	}

	// Exclusive mode: 503 with Retry-After while the attempt runs.
	exclusive.Store(true)
	if r := run(t, env, "policy", "set", "--server", "ps1", "--relocation-mode", "exclusive"); r.code != 0 {
		t.Fatal(r.stderr)
	}
	final := filepath.Join(volB, "exclusive")
	since = setLocation(t, env, "ps1", final)
	waitAttempt(t, env, "ps1", final, since, 3*time.Minute)
	if unavailable.Load() == 0 {
		t.Errorf("no 503 answer during the exclusive relocation")
	}
	n := requests.Load()
	time.Sleep(500 * time.Millisecond)
	exclusive.Store(false) // served again: every answer must be 200 now
	time.Sleep(time.Second)
	close(stop)
	wg.Wait()
	t.Logf("%d requests over %d packages (%d files of %d KiB each): %d failed, %d answered 503 in exclusive mode (%d requests after it)",
		requests.Load(), npkgs, nfiles, size>>10, failures.Load(), unavailable.Load(), requests.Load()-n)
	if failures.Load() != 0 {
		t.Errorf("%d requests failed", failures.Load())
	}
}
