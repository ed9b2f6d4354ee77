package loopfs_test

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/moby/sys/mountinfo"
	"github.com/wharf-project/wharf/internal/testenv/loopfs"
)

// mountAll mounts one filesystem of each kind and returns the mount points.
func mountAll(t *testing.T) []string {
	ram := loopfs.Tmpfs(t, 64)
	dirs := []string{
		ram,
		loopfs.Ext4(t, 16),
		loopfs.Ext4(t, 16, loopfs.ImageIn(ram)),
		loopfs.XFS(t, loopfs.MinXFSMiB),
		loopfs.FAT(t, 16),
		loopfs.FAT(t, 16, loopfs.ImageIn(ram)),
	}
	dirs = append(dirs, loopfs.Bind(t, dirs[1]))
	loopfs.Remount(t, dirs[1], "ro")
	for _, d := range dirs {
		if ok, err := mountinfo.Mounted(d); err != nil || !ok {
			t.Errorf("%s not mounted: %v", d, err)
		}
	}
	return dirs
}

// checkGone fails unless none of dirs is mounted and no loop device is
// backed by a file below tmpRoot.
func checkGone(t *testing.T, dirs []string, tmpRoot string) {
	t.Helper()
	for _, d := range dirs {
		if ok, _ := mountinfo.Mounted(d); ok {
			t.Errorf("%s still mounted", d)
		}
	}
	out, err := exec.Command("losetup", "-a").Output()
	if err != nil {
		t.Fatalf("losetup -a: %v", err)
	}
	if tmpRoot != "" && bytes.Contains(out, []byte(tmpRoot)) {
		t.Errorf("loop devices left attached:\n%s", out)
	}
}

func TestCleanup(t *testing.T) {
	var dirs []string
	t.Run("mount", func(t *testing.T) { dirs = mountAll(t) })
	loopfs.RequireRoot(t)
	checkGone(t, dirs, os.TempDir()+"/TestCleanup")
}

// TestCleanupAfterFailure runs a test that mounts everything and then fails,
// in a child process, and checks that it left nothing mounted.
func TestCleanupAfterFailure(t *testing.T) {
	if os.Getenv("LOOPFS_FAIL_AFTER_MOUNT") == "1" {
		for _, d := range mountAll(t) {
			t.Log("MOUNTED " + d)
		}
		t.Fatal("failing on purpose")
	}
	loopfs.RequireRoot(t)
	cmd := exec.Command(os.Args[0], "-test.run=^TestCleanupAfterFailure$", "-test.v")
	cmd.Env = append(os.Environ(), "LOOPFS_FAIL_AFTER_MOUNT=1")
	out, err := cmd.CombinedOutput()
	if err == nil || !bytes.Contains(out, []byte("failing on purpose")) {
		t.Fatalf("child test: %v, want a failure\n%s", err, out)
	}
	var dirs []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if _, d, ok := strings.Cut(sc.Text(), "MOUNTED "); ok {
			dirs = append(dirs, d)
		}
	}
	if len(dirs) != 7 {
		t.Fatalf("child mounted %d filesystems, want 7\n%s", len(dirs), out)
	}
	checkGone(t, dirs, os.TempDir()+"/TestCleanupAfterFailure")
}
