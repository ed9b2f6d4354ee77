package volumetest_test

import (
	"errors"
	"testing"

	"github.com/wharf-project/wharf/internal/ps/volume"
	"github.com/wharf-project/wharf/internal/ps/volume/volumetest"
	"github.com/wharf-project/wharf/internal/wharf"
)

func TestFakeStat(t *testing.T) {
	f := volumetest.New(
		volumetest.Disk("/", "ext4", 100, 10),
		volumetest.Disk("/data", "xfs", 1000, 500),
		volumetest.Disk("/data/deep/", "ext4", 10, 1),
	)
	tests := []struct{ path, root string }{
		{"/", "/"},
		{"/etc/x", "/"},
		{"/data", "/data"},
		{"/data/x/y", "/data"},
		{"/database", "/"},
		{"/data/deep/x", "/data/deep"},
		{"/data/deep/../x", "/data"},
	}
	for _, tt := range tests {
		got, err := f.Stat(tt.path)
		if err != nil {
			t.Fatalf("Stat(%s): %v", tt.path, err)
		}
		if got.Root != tt.root {
			t.Errorf("Stat(%s).Root = %s, want %s", tt.path, got.Root, tt.root)
		}
	}
	got, _ := f.Stat("/data/new/store")
	if got.Path != "/data/new/store" || got.FSType != "xfs" || !got.Fixed || !got.Supported || got.AvailBytes != 500 {
		t.Errorf("Stat(/data/new/store) = %+v", got)
	}
	root, _ := f.Stat("/")
	if root.DevID == got.DevID || root.Device == got.Device {
		t.Errorf("two volumes share DevID %d or Device %s", got.DevID, got.Device)
	}
}

func TestFakeChanges(t *testing.T) {
	f := volumetest.New(volumetest.Disk("/data", "ext4", 1000, 500))
	if _, err := f.Stat("/elsewhere"); !errors.Is(err, wharf.ErrNotFound) {
		t.Errorf("Stat off every volume: %v, want wharf.ErrNotFound", err)
	}
	f.SetAvail("/data", 7)
	f.Update("/data/", func(v *volume.Info) { v.ReadOnly = true })
	if got, _ := f.Stat("/data/x"); got.AvailBytes != 7 || !got.ReadOnly {
		t.Errorf("after SetAvail and Update: %+v", got)
	}
	eio := errors.New("input/output error")
	f.FailStat("/data", eio)
	if _, err := f.Stat("/data/x"); !errors.Is(err, eio) {
		t.Errorf("FailStat: Stat error %v", err)
	}
	f.FailStat("/data", nil)
	if _, err := f.Stat("/data/x"); err != nil {
		t.Errorf("after clearing FailStat: %v", err)
	}
	f.Remove("/data")
	if vols, err := f.Volumes(); err != nil || len(vols) != 0 {
		t.Errorf("after Remove: Volumes = %v, %v", vols, err)
	}
	var zero volumetest.Fake
	if vols, err := zero.Volumes(); err != nil || len(vols) != 0 {
		t.Errorf("zero Fake: Volumes = %v, %v", vols, err)
	}
}

func TestDisk(t *testing.T) {
	for _, fstype := range []string{"ext4", "xfs", "NTFS", "ReFS"} {
		if v := volumetest.Disk("/x", fstype, 1, 1); !v.Supported || !v.Fixed {
			t.Errorf("Disk(%s) = %+v, want fixed and supported", fstype, v)
		}
	}
	if v := volumetest.Disk("/x", "vfat", 1, 1); v.Supported || v.SupportedReason == "" {
		t.Errorf("Disk(vfat) = %+v, want unsupported with a reason", v)
	}
}
