package ps_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wharf-project/wharf/internal/api"
	"github.com/wharf-project/wharf/internal/ps/admin"
	"github.com/wharf-project/wharf/internal/ps/fsys"
	"github.com/wharf-project/wharf/internal/ps/storeroot"
	"github.com/wharf-project/wharf/internal/ps/volume/volumetest"
	"github.com/wharf-project/wharf/internal/testenv/nstest"
)

// The policy switch "allow usage of all fixed drives" reaches the placer
// through the long poll, without a restart; a rotated root is a store root
// like any other (marker, serving, unavailability, removal). Volumes are
// faked: the install dir's volume is nearly full, another folder is a roomy
// volume.
func TestAllFixedDrivesSwitchAppliesWithoutRestart(t *testing.T) {
	ns := nstest.New(t)
	settings := api.AgentSettings{PollWaitSeconds: 30, DownloadConcurrency: 2}
	ns.SetSettings(settings)
	cfg := baseConfig(t, ns)
	other := t.TempDir()
	facts := volumetest.New(
		volumetest.Disk(cfg.InstallDir, "ext4", 1<<30, 40<<20), // 40 MiB free, 51.2 MiB reserve
		volumetest.Disk(other, "xfs", 100<<30, 50<<30),
	)
	cfg.Facts = facts
	r := start(t, cfg)
	ac := admin.NewClient(admin.SocketPath(cfg.InstallDir))
	primary := cfg.PrimaryLocation()
	rotated := filepath.Join(other, storeroot.DirName)

	files := map[string][]byte{"bin/tool": randBytes(5000), "readme": []byte("read me")}
	p := ns.AddPackage("tool", "1", files)
	st, ok := ns.WaitState("ps1", p.ID, api.StateFailed, 10*time.Second)
	if !ok {
		t.Fatalf("with the switch off: got %+v, want failed", st)
	}
	want := "not enough space on " + cfg.InstallDir + ": need 12.9KiB, 40MiB free, reserve 51.2MiB"
	if !strings.Contains(st.Reason, want) {
		t.Errorf("reason %q: want it to contain %q", st.Reason, want)
	}
	if _, err := os.Stat(primary); !os.IsNotExist(err) {
		t.Errorf("the primary location was created for a package that found no room: %v", err)
	}
	status, err := ac.Status(context.Background())
	if err != nil || len(status.Packages) != 1 || status.Packages[0].State != api.StateFailed || status.Packages[0].Reason == "" {
		t.Errorf("status with the switch off: %+v, %v", status, err)
	}

	// The policy changes: the package is placed again at once (not after
	// its backoff) and rotates onto the roomy volume.
	settings.AllFixedDrives = true
	ns.SetSettings(settings)
	st, ok = ns.WaitState("ps1", p.ID, api.StateReady, 10*time.Second)
	if !ok {
		t.Fatalf("with the switch on: got %+v, want ready", st)
	}
	if want := filepath.Join(rotated, p.ID); st.Path != want {
		t.Errorf("reported path %q, want %q", st.Path, want)
	}
	if ok, err := storeroot.New(fsys.OS{}, "", nil).HasMarker(rotated); !ok {
		t.Errorf("rotated root has no marker: %v", err)
	}
	for rel, data := range files {
		if code, body := fetchURL(t, r.d.URL()+"/packages/"+p.ID+"/"+rel); code != 200 || body != string(data) {
			t.Errorf("serve rotated %s: HTTP %d, %d bytes", rel, code, len(body))
		}
	}
	status, err = ac.Status(context.Background())
	if err != nil || len(status.Packages) != 1 || status.Packages[0].Path != filepath.Join(rotated, p.ID) || status.StoragePath != primary {
		t.Errorf("status: %+v, %v", status, err)
	}

	// Space freed on the primary volume: new packages go there again.
	facts.SetAvail(cfg.InstallDir, 500<<20)
	q := ns.AddPackage("q", "1", map[string][]byte{"q": []byte("q")})
	if st, ok := ns.WaitState("ps1", q.ID, api.StateReady, 10*time.Second); !ok || st.Path != filepath.Join(primary, q.ID) {
		t.Errorf("package after space was freed: %+v", st)
	}

	// The rotated root loses its marker (its volume unmounted): unavailable,
	// not served, kept; back with the marker.
	marker := filepath.Join(rotated, storeroot.MarkerName)
	saved, err := os.ReadFile(marker)
	if err != nil {
		t.Fatal(err)
	}
	os.Remove(marker)
	if err := ac.UpdateConfig(context.Background()); err != nil {
		t.Fatal(err)
	}
	if st, ok := ns.WaitState("ps1", p.ID, api.StateUnavailable, 10*time.Second); !ok || !strings.Contains(st.Reason, rotated) {
		t.Errorf("rotated root without marker: %+v", st)
	}
	if code, _ := fetchURL(t, r.d.URL()+"/packages/"+p.ID+"/readme"); code != 404 {
		t.Errorf("serve from an unavailable rotated root: HTTP %d, want 404", code)
	}
	if err := os.WriteFile(marker, saved, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := ac.UpdateConfig(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, ok := ns.WaitState("ps1", p.ID, api.StateReady, 10*time.Second); !ok {
		t.Error("rotated package not ready after its marker came back")
	}

	// Unassigned: removed from the rotated root.
	ns.Unassign(p.ID)
	waitFor(t, "removal from the rotated root", func() bool {
		_, err := os.Lstat(filepath.Join(rotated, p.ID))
		return os.IsNotExist(err)
	})
	r.stop(t)
}
