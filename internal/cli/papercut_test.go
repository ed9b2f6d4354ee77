package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wharf-project/wharf/internal/api"
	"github.com/wharf-project/wharf/internal/wharf"
)

// Tests of the papercuts of issue 16, as an administrator meets them.

func TestMistypedSubcommandIsAUsageError(t *testing.T) {
	for _, args := range [][]string{{"policy", "sett"}, {"server", "shwo", "x"}, {"alert", "lss"}, {"ps", "stauts"}} {
		var out, errOut strings.Builder
		code := Main(t.Context(), args, Stdio{In: strings.NewReader(""), Out: &out, Err: &errOut})
		if code != exitUsage {
			t.Errorf("wharf %s: exit %d, want %d (stdout %q)", strings.Join(args, " "), code, exitUsage, out.String())
		}
		if !strings.Contains(errOut.String(), "unknown command "+`"`+args[1]+`"`) {
			t.Errorf("wharf %s: stderr %q, want it to name the unknown command", strings.Join(args, " "), errOut.String())
		}
	}
	var out, errOut strings.Builder
	if code := Main(t.Context(), []string{"policy", "sett"}, Stdio{In: strings.NewReader(""), Out: &out, Err: &errOut}); code == exitUsage &&
		!strings.Contains(errOut.String(), "did you mean get or set?") {
		t.Errorf("wharf policy sett: stderr %q lacks the suggestion", errOut.String())
	}
	// A group without a subcommand still shows its help.
	out.Reset()
	if code := Main(t.Context(), []string{"policy"}, Stdio{In: strings.NewReader(""), Out: &out, Err: &errOut}); code != exitOK ||
		!strings.Contains(out.String(), "Available Commands") {
		t.Errorf("wharf policy: exit %d, output %q; want its help and 0", code, out.String())
	}
}

// refusedPlan is what a Package Server answers for /etc/wharf.
func refusedPlan(path string) api.LocationPlan {
	return api.LocationPlan{Path: path, Status: 0x040, StatusFlags: []string{"known-folder"},
		Prerequisites: []api.Prerequisite{
			{Name: "not-fixed-media", OK: true, Detail: "volume / is fixed media"},
			{Name: "insufficient-space", OK: true, Detail: "10 MiB needed, 900 MiB free"},
			{Name: "known-folder", Detail: path + " is the system folder /etc or below it"},
		}, NeededMB: 10, FreeMB: 900, LongestPath: 80, PathLimit: 4095}
}

func TestRefusedCheckLocationExitsNonZero(t *testing.T) {
	n := newTestNS(t)
	agent := n.enroll("ps-a", "linux")
	n.answerTasks(agent, "ps-a", func(path string) api.LocationPlan {
		if path == "/srv/wharf" {
			return api.LocationPlan{Path: path, Prerequisites: []api.Prerequisite{{Name: "insufficient-space", OK: true}}}
		}
		return refusedPlan(path)
	})

	code, stdout, stderr := n.wharf("server", "check-location", "ps-a", "/etc/wharf")
	if code != exitError {
		t.Errorf("refused check: exit %d, want %d (stderr %q)", code, exitError, stderr)
	}
	if !strings.Contains(stderr, "cannot relocate to /etc/wharf: known-folder") {
		t.Errorf("refused check: stderr %q lacks the reason", stderr)
	}
	for _, want := range []string{"Target /etc/wharf: cannot relocate: known-folder", "FAIL  not a known folder (known-folder)", "ok    enough space"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("refused check: output lacks %q:\n%s", want, stdout)
		}
	}
	if strings.Contains(stdout, "ok    insufficient-space") || strings.Contains(stdout, "ok    not-fixed-media") {
		t.Errorf("a passing check is named by the failure it did not find:\n%s", stdout)
	}

	code, _, stderr = n.wharf("server", "check-location", "ps-a", "/etc/wharf", "--json")
	if code != exitError {
		t.Errorf("refused check --json: exit %d, want %d (%s)", code, exitError, stderr)
	}
	if code, stdout, stderr := n.wharf("server", "check-location", "ps-a", "/srv/wharf"); code != exitOK || !strings.Contains(stdout, "can relocate") {
		t.Errorf("passing check: exit %d, %q %q", code, stdout, stderr)
	}
}

func TestPolicySetEchoesTheRateAsGiven(t *testing.T) {
	n := newTestNS(t)
	for in, want := range map[string]string{"5MB/s": "5MB/s", "20MiB/s": "20MiB/s", "1GB/s": "1GB/s", "0": "unlimited"} {
		code, stdout, stderr := n.wharf("policy", "set", "--download-bandwidth", in)
		if code != exitOK {
			t.Fatalf("policy set --download-bandwidth %s: exit %d %s", in, code, stderr)
		}
		if !strings.Contains(stdout, "Download bandwidth:    "+want+"\n") {
			t.Errorf("policy set --download-bandwidth %s printed:\n%s\nwant %q", in, stdout, want)
		}
	}
}

func TestServerShowLabelsMiB(t *testing.T) {
	n := newTestNS(t)
	agent := n.enroll("ps-a", "linux")
	n.event(agent, "ps-a", api.LocationStatus{StoragePath: "/srv/wharf", VolumeTotalMB: 1000, VolumeFreeMB: 400, PSUsedMB: 300,
		VolumeRequiredMB: 300, LastStatus: 0x001})
	code, stdout, stderr := n.wharf("server", "show", "ps-a")
	if code != exitOK {
		t.Fatalf("server show: exit %d %s", code, stderr)
	}
	for _, want := range []string{"Volume size:            1000 MiB", "Volume free:            400 MiB", "Used by this PS:        300 MiB"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("server show lacks %q:\n%s", want, stdout)
		}
	}
	if strings.Contains(stdout, " MB\n") {
		t.Errorf("server show labels MiB values MB:\n%s", stdout)
	}
}

func TestRepeatedAttemptsMakeOneAlert(t *testing.T) {
	n := newTestNS(t)
	agent := n.enroll("ps-a", "linux")
	exhausted := api.LocationStatus{StoragePath: "/srv/wharf", LastStatus: 0x002 | 0x200 | 0x400, AttemptsDone: 3, MaxAttempts: 3}
	for range 3 { // three manual retries while the automatic ones are exhausted
		n.event(agent, "ps-a", exhausted)
	}
	n.event(agent, "ps-a", api.LocationStatus{StoragePath: "/etc/wharf", LastStatus: 0x040}) // another alert
	list, err := n.admin.Alerts(t.Context(), true)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[1].Count != 3 || list[0].Count != 1 {
		t.Fatalf("unread alerts after 3 identical attempts and a refusal: %+v; want 2, the first counted 3 times", list)
	}
	code, stdout, _ := n.wharf("alert", "ls")
	if code != 0 || !strings.Contains(stdout, "TIMES") || !strings.Contains(stdout, " 3 ") {
		t.Errorf("alert ls does not show the count:\n%s", stdout)
	}

	code, stdout, stderr := n.wharf("alert", "read", "--all")
	if code != exitOK || !strings.Contains(stdout, "Marked 2 alerts read") {
		t.Fatalf("alert read --all: exit %d %q %q", code, stdout, stderr)
	}
	if list, _ := n.admin.Alerts(t.Context(), true); len(list) != 0 {
		t.Fatalf("unread alerts after read --all: %+v", list)
	}
	// Once read, the same alert again is news.
	n.event(agent, "ps-a", exhausted)
	if list, _ := n.admin.Alerts(t.Context(), true); len(list) != 1 || list[0].Count != 1 {
		t.Fatalf("unread alerts after a repeat of a read alert: %+v", list)
	}
	if code, _, _ := n.wharf("alert", "read", "--all", "x"); code != exitUsage {
		t.Errorf("alert read --all ID: exit %d, want %d", code, exitUsage)
	}
}

func TestServerLsShowsThePathInEffectAfterARefusal(t *testing.T) {
	n := newTestNS(t)
	for _, reportsInEffect := range []bool{true, false} { // false: an older PS, whose events lack it
		name := "ps-new"
		if !reportsInEffect {
			name = "ps-old"
		}
		agent := n.enroll(name, "linux")
		moved := api.LocationStatus{StoragePath: "/srv/a", LastStatus: 0x001}
		refused := api.LocationStatus{StoragePath: "/etc/wharf", LastStatus: 0x040}
		if reportsInEffect {
			moved.StoragePathInEffect, moved.Outcome = "/srv/a", api.OutcomeSuccess
			refused.StoragePathInEffect, refused.Outcome = "/srv/a", api.OutcomeRefused
		}
		n.event(agent, name, moved)
		n.event(agent, name, refused)
	}
	code, stdout, stderr := n.wharf("server", "ls")
	if code != exitOK {
		t.Fatalf("server ls: exit %d %s", code, stderr)
	}
	lines := strings.Split(stdout, "\n")
	for _, name := range []string{"ps-new", "ps-old"} {
		var line string
		for _, l := range lines {
			if strings.HasPrefix(l, name+" ") {
				line = l
			}
		}
		f := strings.Fields(line)
		if len(f) < 5 || f[3] != "/srv/a" {
			t.Errorf("server ls, %s: STORAGE PATH is not /srv/a, where the packages are:\n%s", name, stdout)
		}
		if !strings.Contains(line, "known-folder (to /etc/wharf)") {
			t.Errorf("server ls, %s: the refused target is not named as such:\n%s", name, line)
		}
		code, stdout, _ := n.wharf("server", "show", name)
		if code != exitOK || !strings.Contains(stdout, "Storage path:  /srv/a\n") || !strings.Contains(stdout, "Target of the attempt:  /etc/wharf") {
			t.Errorf("server show %s:\n%s", name, stdout)
		}
	}
	list, err := n.admin.ListServers(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range list {
		if s.StoragePath != "/srv/a" {
			t.Errorf("GET /servers: %s storage_path %q, want /srv/a", s.Name, s.StoragePath)
		}
	}
}

func TestCanceledAttemptHasAName(t *testing.T) {
	n := newTestNS(t)
	agent := n.enroll("ps-a", "linux")
	n.event(agent, "ps-a", api.LocationStatus{StoragePath: "/srv/b", LastStatus: 0, Outcome: api.OutcomeCanceled,
		StoragePathInEffect: "/srv/a", Message: "relocation to /srv/b stopped between packages: the storage location changed to /srv/c"})
	_, stdout, _ := n.wharf("server", "show", "ps-a")
	if !strings.Contains(stdout, "Last status:            0x000 canceled") {
		t.Errorf("a canceled attempt is not named:\n%s", stdout)
	}
	_, stdout, _ = n.wharf("server", "ls")
	if !strings.Contains(stdout, "canceled (to /srv/b)") {
		t.Errorf("server ls does not name a canceled attempt:\n%s", stdout)
	}
}

func TestPolicyRefusesAKnownFolderAtSave(t *testing.T) {
	n := newTestNS(t)
	n.enroll("ps-win", "windows")
	for _, args := range [][]string{
		{"policy", "set", "--linux-location", "/etc/wharf"},
		{"policy", "set", "--windows-location", `C:\Windows\Wharf`},
		{"policy", "set", "--server", "ps-win", "--windows-location", `C:\ProgramData\Wharf`},
		{"policy", "set", "--linux-location", "/srv/wharf", "--windows-location", `c:\users\public\wharf`},
	} {
		code, stdout, stderr := n.wharf(args...)
		if code != exitError || !strings.Contains(stderr, "is the system folder") || !strings.Contains(stderr, "known-folder") {
			t.Errorf("wharf %s: exit %d, stderr %q; want 1 and why (stdout %q)", strings.Join(args, " "), code, stderr, stdout)
		}
	}
	p, err := n.admin.PackageServerPolicy(t.Context(), "")
	if err != nil {
		t.Fatal(err)
	}
	if p.Version != 0 || *p.Settings.LinuxLocation != api.LocationDefault || *p.Settings.WindowsLocation != api.LocationDefault {
		t.Errorf("refused locations were saved: %+v", p)
	}
	// Another OS's folder is no system folder: a Linux path under /Windows
	// is fine, and so is D:\Users on Windows.
	if code, _, stderr := n.wharf("policy", "set", "--linux-location", "/Windows/wharf", "--windows-location", `D:\Users\Wharf`); code != exitOK {
		t.Errorf("locations outside the known folders refused: %s", stderr)
	}
}

// publish publishes a one-file package through `wharf package add` and
// returns its id.
func (n *testNS) publish(name, version string) string {
	n.t.Helper()
	dir := n.t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "f.txt"), []byte(name+" "+version), 0o644); err != nil {
		n.t.Fatal(err)
	}
	code, stdout, stderr := n.wharf("package", "add", dir, "--name", name, "--version", version, "--json")
	if code != exitOK {
		n.t.Fatalf("package add: exit %d %s", code, stderr)
	}
	var res struct {
		Package api.PackageSummary `json:"package"`
	}
	if err := json.Unmarshal([]byte(stdout), &res); err != nil || res.Package.ID == "" {
		n.t.Fatalf("package add output %q: %v", stdout, err)
	}
	return res.Package.ID
}

func TestServerShowNamesPackages(t *testing.T) {
	n := newTestNS(t)
	agent := n.enroll("ps-a", "linux")
	tool, agentPkg := n.publish("tool", "2.0"), n.publish("agent", "1.4.2")
	if err := agent.PutPackageStates(t.Context(), "ps-a", []api.PackageState{
		{PackageID: tool, State: api.StateReady, Path: "/srv/a/" + tool},
		{PackageID: agentPkg, State: api.StateReady, Path: "/data/Package Delivery/" + agentPkg},
	}); err != nil {
		t.Fatal(err)
	}
	n.event(agent, "ps-a", api.LocationStatus{StoragePath: "/srv/a", StoragePathInEffect: "/srv/a", LastStatus: 0x002,
		Outcome: api.OutcomeWarning, Message: wharf.RelocationWarning,
		Packages: []api.RelocationPackage{{PackageID: agentPkg, State: api.RelocationLinked, Reason: "file held"}}})
	code, stdout, stderr := n.wharf("server", "show", "ps-a")
	if code != exitOK {
		t.Fatalf("server show: exit %d %s", code, stderr)
	}
	for _, want := range []string{`tool +2\.0 +` + tool + ` +ready`, `agent +1\.4\.2 +` + agentPkg + ` +ready`,
		`agent +1\.4\.2 +` + agentPkg + ` +linked +file held`} {
		if !regexp.MustCompile(want).MatchString(stdout) {
			t.Errorf("server show lacks %q:\n%s", want, stdout)
		}
	}
}

func TestPackageShowTakesNameAtVersion(t *testing.T) {
	n := newTestNS(t)
	v1, v2 := n.publish("tool", "1.0"), n.publish("tool", "2.0")
	for spec, want := range map[string]string{"tool@1.0": v1, "tool@2.0": v2, "tool": v2, v1: v1} {
		code, stdout, stderr := n.wharf("package", "show", spec)
		if code != exitOK || !strings.Contains(stdout, "ID:          "+want) {
			t.Errorf("package show %s: exit %d, %q %q; want package %s", spec, code, stdout, stderr, want)
		}
	}
	if code, _, stderr := n.wharf("package", "show", "tool@3.0"); code != exitError || !strings.Contains(stderr, "has no version") {
		t.Errorf("package show tool@3.0: exit %d %q", code, stderr)
	}
	if code, _, _ := n.wharf("package", "rm", "tool"); code != exitUsage {
		t.Errorf("package rm of a name without a version: exit %d, want %d", code, exitUsage)
	}
	if code, stdout, stderr := n.wharf("package", "rm", "tool@1.0"); code != exitOK || !strings.Contains(stdout, v1) {
		t.Fatalf("package rm tool@1.0: exit %d %q %q", code, stdout, stderr)
	}
	if list, _ := n.admin.ListPackages(t.Context(), "tool", ""); len(list) != 1 || list[0].ID != v2 {
		t.Errorf("after rm tool@1.0: %+v", list)
	}
}

// syncBuf is a strings.Builder safe for a command running on another
// goroutine.
type syncBuf struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestServerWatchFollowsARelocation(t *testing.T) {
	n := newTestNS(t)
	agent := n.enroll("ps-a", "linux")
	n.event(agent, "ps-a", api.LocationStatus{StoragePath: "/srv/a", LastStatus: 0x001, Outcome: api.OutcomeSuccess})

	watch := func(args ...string) (*syncBuf, chan int) {
		out, errOut := &syncBuf{}, &syncBuf{}
		done := make(chan int, 1)
		go func() {
			args = append(append([]string{"server", "watch", "ps-a", "--interval", "10ms"}, args...), "--ns", n.url, "--token", n.token)
			done <- Main(t.Context(), args, Stdio{In: strings.NewReader(""), Out: out, Err: errOut})
		}()
		return out, done
	}
	waitOutput := func(out *syncBuf, want string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !strings.Contains(out.String(), want) {
			if time.Now().After(deadline) {
				t.Fatalf("watch output lacks %q:\n%s", want, out.String())
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	progress := func(target string, done int64) api.LocationStatus {
		return api.LocationStatus{StoragePath: target, StoragePathInEffect: "/srv/a", LastStatus: 0x004,
			Progress: &api.RelocationProgress{BytesDone: done << 20, BytesTotal: 4 << 20, PackagesDone: int(done), PackagesTotal: 4}}
	}

	// The last attempt ended already: the watch waits for the next one,
	// follows a canceled attempt into the next, and ends with it.
	out, done := watch()
	n.event(agent, "ps-a", progress("/srv/b", 1))
	waitOutput(out, "ps-a: relocating to /srv/b: 25%, 1 of 4 packages, 1MiB of 4MiB")
	n.event(agent, "ps-a", api.LocationStatus{StoragePath: "/srv/b", StoragePathInEffect: "/srv/a", Outcome: api.OutcomeCanceled,
		Message: "relocation to /srv/b stopped between packages: the storage location changed to /srv/c"})
	waitOutput(out, "ps-a: canceled:")
	n.event(agent, "ps-a", progress("/srv/c", 2))
	waitOutput(out, "ps-a: relocating to /srv/c: 50%")
	n.event(agent, "ps-a", api.LocationStatus{StoragePath: "/srv/c", StoragePathInEffect: "/srv/c", LastStatus: 0x001, Outcome: api.OutcomeSuccess})
	select {
	case code := <-done:
		if code != exitOK || !strings.Contains(out.String(), "ps-a: success: every package is at /srv/c") {
			t.Errorf("watch: exit %d, output:\n%s", code, out.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("watch did not end with the attempt:\n%s", out.String())
	}

	// An attempt that ends with a warning ends the watch with exit 1.
	out, done = watch()
	n.event(agent, "ps-a", progress("/srv/d", 3))
	waitOutput(out, "relocating to /srv/d")
	n.event(agent, "ps-a", api.LocationStatus{StoragePath: "/srv/d", StoragePathInEffect: "/srv/d", LastStatus: 0x002,
		Outcome: api.OutcomeWarning, Message: wharf.RelocationWarning})
	if code := <-done; code != exitError || !strings.Contains(out.String(), "ps-a: warning: "+wharf.RelocationWarning) {
		t.Errorf("watch of a warning: exit %d, output:\n%s", code, out.String())
	}

	// --no-wait: the last attempt, at once; show --follow prints the server first.
	if code, stdout, _ := n.wharf("server", "watch", "ps-a", "--no-wait"); code != exitError || !strings.Contains(stdout, "warning") {
		t.Errorf("watch --no-wait after a warning: exit %d %q", code, stdout)
	}
	if code, _, stderr := n.wharf("server", "watch", "ps-a", "--timeout", "50ms", "--interval", "10ms"); code != exitError ||
		!strings.Contains(stderr, "no relocation attempt ended within 50ms") {
		t.Errorf("watch --timeout: exit %d %q", code, stderr)
	}
}

func TestServerShowPrintsLinksAndCapacity(t *testing.T) {
	n := newTestNS(t)
	agent := n.enroll("ps-a", "linux")
	now := time.Now().UTC()
	for i := 24; i >= 0; i-- { // a day of hourly reports, 1 GiB a day
		err := agent.PostHealth(t.Context(), "ps-a", api.HealthReport{At: now.Add(-time.Duration(i) * time.Hour),
			Volumes: []api.VolumeUsage{{Volume: "/data", TotalMB: 100 << 10, FreeMB: 20<<10 + int64(i)*1024/24, ReserveMB: 5 << 10}},
			Links: &api.LinkAudit{At: now, Links: 2, Counts: map[string]int{api.LinkTargetUnavailable: 1},
				Problems: []api.LinkProblem{{PackageID: "p1", Kind: api.LinkTargetUnavailable, Link: "/srv/a/p1",
					Folder: "/mnt/old/Package Delivery/p1", Detail: "the package is not served: store root /mnt/old/Package Delivery has no marker"}}}})
		if err != nil {
			t.Fatal(err)
		}
	}
	code, stdout, stderr := n.wharf("server", "show", "ps-a")
	if code != exitOK {
		t.Fatalf("server show: %d %s", code, stderr)
	}
	for _, want := range []string{"Links:         2 packages behind links, 1 with problems: 1 target-unavailable",
		"target-unavailable", "mount it back", "/data", "+1024 MiB/day  under the reserve in 15.0 days"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("server show lacks %q:\n%s", want, stdout)
		}
	}
	alerts, _ := n.admin.Alerts(t.Context(), true)
	if len(alerts) != 1 || !strings.Contains(alerts[0].Message, "not served: the volume holding them is unavailable") {
		t.Errorf("alerts after 25 reports of one link problem: %+v; want one", alerts)
	}
}
