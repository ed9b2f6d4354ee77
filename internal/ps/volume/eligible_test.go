//go:build !windows

// Unix paths over the in-memory fakes: not run on Windows, where the
// *_windows_test.go files test the same behaviour on real drives.

package volume_test

import (
	"errors"
	"slices"
	"testing"

	"github.com/wharf-project/wharf/internal/ps/volume"
	"github.com/wharf-project/wharf/internal/ps/volume/volumetest"
)

const gib = 1 << 30

// fleet is a PS with every kind of volume: two good data disks, a bind
// mount of one of them, and one volume for each reason to refuse.
func fleet() *volumetest.Fake {
	data2 := volumetest.Disk("/data2", "xfs", 500*gib, 200*gib)
	data2.DevID, data2.Device = 42, "/dev/sdc1"
	bind := data2
	bind.Root, bind.FSRoot = "/a-bind", "/export" // listed before /data2
	ro := volumetest.Disk("/ro", "ext4", 100*gib, 90*gib)
	ro.ReadOnly = true
	usb := volumetest.Disk("/media/usb", "ext4", 100*gib, 99*gib)
	usb.Fixed, usb.FixedReason = false, "removable device sdb"
	nfs := volumetest.Disk("/net", "nfs4", 1000*gib, 900*gib)
	nfs.Fixed, nfs.FixedReason = false, "network filesystem nfs4"
	nfs.Supported, nfs.SupportedReason = volume.SupportedFS("linux", "nfs4")
	tmp := volumetest.Disk("/run/shm", "tmpfs", 10*gib, 10*gib)
	tmp.Fixed, tmp.FixedReason = false, "memory filesystem tmpfs"
	tmp.Supported, tmp.SupportedReason = volume.SupportedFS("linux", "tmpfs")
	excl := volumetest.Disk("/excluded", "ext4", 100*gib, 95*gib)
	excl.Excluded = true
	return volumetest.New(
		volumetest.Disk("/", "ext4", 50*gib, 5*gib),
		volumetest.Disk("/data1", "ext4", 1000*gib, 300*gib),
		data2, bind, ro, usb, nfs, tmp, excl,
		volumetest.Disk("/fat", "vfat", 100*gib, 99*gib),
		volumetest.Disk("/tie", "btrfs", 100*gib, 5*gib),
	)
}

func roots(vs []volume.Info) []string {
	var out []string
	for _, v := range vs {
		out = append(out, v.Root)
	}
	return out
}

func TestEligible(t *testing.T) {
	tests := []struct {
		name string
		only []string
		want []string
	}{
		{"all", nil, []string{"/data1", "/data2", "/", "/tie"}},
		{"restricted", []string{"/data2/", "/tie"}, []string{"/data2", "/tie"}},
		{"restricted to the bind mount", []string{"/a-bind"}, []string{"/a-bind"}},
		{"restricted to refused volumes", []string{"/ro", "/media/usb", "/net", "/run/shm", "/excluded", "/fat"}, nil},
		{"restricted to nothing mounted", []string{"/nowhere"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := volume.Eligible(fleet(), volume.EligibleOptions{Only: tt.only})
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(roots(got), tt.want) {
				t.Errorf("Eligible = %q, want %q", roots(got), tt.want)
			}
		})
	}
}

func TestEligibleFollowsFreeSpace(t *testing.T) {
	f := fleet()
	f.SetAvail("/tie", 400*gib)
	got, err := volume.Eligible(f, volume.EligibleOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"/tie", "/data1", "/data2", "/"}; !slices.Equal(roots(got), want) {
		t.Errorf("after SetAvail: Eligible = %q, want %q", roots(got), want)
	}
}

func TestEligibleError(t *testing.T) {
	f := fleet()
	boom := errors.New("boom")
	f.FailVolumes(boom)
	if _, err := volume.Eligible(f, volume.EligibleOptions{}); !errors.Is(err, boom) {
		t.Errorf("Eligible error = %v, want %v", err, boom)
	}
}

func TestIneligible(t *testing.T) {
	vols, err := fleet().Volumes()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"/":          "",
		"/a-bind":    "",
		"/data1":     "",
		"/data2":     "",
		"/tie":       "",
		"/ro":        "read-only",
		"/media/usb": "not fixed media: removable device sdb",
		"/net":       "not fixed media: network filesystem nfs4",
		"/run/shm":   "not fixed media: memory filesystem tmpfs",
		"/excluded":  "excluded by NO_WHARF_ON_DRIVE",
		"/fat":       "unsupported filesystem vfat",
	}
	for _, v := range vols {
		if got := volume.Ineligible(v, volume.EligibleOptions{}); got != want[v.Root] {
			t.Errorf("Ineligible(%s) = %q, want %q", v.Root, got, want[v.Root])
		}
	}
	data1 := vols[slices.IndexFunc(vols, func(v volume.Info) bool { return v.Root == "/data1" })]
	if got := volume.Ineligible(data1, volume.EligibleOptions{Only: []string{"/data2"}}); got != "not in storage.volumes" {
		t.Errorf("Ineligible outside storage.volumes = %q", got)
	}
}
