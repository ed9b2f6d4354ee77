package relocate_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/windows"

	"github.com/wharf-project/wharf/internal/ps/fsys"
	"github.com/wharf-project/wharf/internal/ps/pstest"
	"github.com/wharf-project/wharf/internal/ps/relocate"
	"github.com/wharf-project/wharf/internal/ps/relocate/relocatetest"
	"github.com/wharf-project/wharf/internal/ps/storeroot"
	"github.com/wharf-project/wharf/internal/ps/volume"
	"github.com/wharf-project/wharf/internal/testenv/winetest"
	"github.com/wharf-project/wharf/internal/wharf"
)

// The relocation engine on Windows file systems: fsys.OS and volume.New()
// on the harness's drives D: and E: (two loop-mounted volumes), C: and the
// CD-ROM, network and removable drives.

const winServer = "ps-windows"

// winStore is a store of packages on a real drive.
type winStore struct {
	t        *testing.T
	from     string
	index    *relocatetest.Index
	journal  *relocatetest.Journal
	contents map[wharf.PackageID]map[string][]byte
}

// newWinStore makes a store root with a marker under root and n packages of
// a few files in it.
func newWinStore(t *testing.T, root string, n int) *winStore {
	t.Helper()
	from := filepath.Join(root, "Package Delivery")
	if err := os.Mkdir(from, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(from, storeroot.MarkerName), []byte(`{"server":"`+winServer+`"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	s := &winStore{t: t, from: from, index: relocatetest.NewIndex(), journal: &relocatetest.Journal{},
		contents: map[wharf.PackageID]map[string][]byte{}}
	for i := range n {
		files := map[string][]byte{}
		for j := range 3 {
			files[fmt.Sprintf("dir%d/file %d.bin", j%2, j)] = bytes.Repeat([]byte{byte('a' + i), byte(j)}, 20_000+i*1000)
		}
		id := relocatetest.ID(i)
		folder := filepath.Join(from, string(id))
		manifest, err := relocatetest.WritePackage(fsys.OS{}, folder, files)
		if err != nil {
			t.Fatal(err)
		}
		s.index.Add(relocate.Package{ID: id, Location: relocate.Location{Folder: folder}}, manifest)
		s.contents[id] = files
	}
	return s
}

func (s *winStore) engine() *relocate.Engine {
	s.t.Helper()
	e, err := relocate.New(relocate.Options{FS: fsys.OS{}, Facts: volume.New(), Index: s.index, Journal: s.journal,
		Server: winServer, Parallel: 2, Log: pstest.Logger(s.t)})
	if err != nil {
		s.t.Fatal(err)
	}
	return e
}

func (s *winStore) run(req relocate.Request) *relocate.Result {
	s.t.Helper()
	res, err := s.engine().Run(context.Background(), req)
	if err != nil {
		s.t.Fatalf("Run(%s): %v", req.Target, err)
	}
	return res
}

// verify checks every package whole at target (its folder there, or the
// link to it), the index naming it, the journal closed (but for leftovers
// of the packages in leftoversOf), no temporary copy.
func (s *winStore) verify(target string, leftoversOf ...wharf.PackageID) {
	s.t.Helper()
	for _, p := range s.index.All() {
		at := filepath.Join(target, string(p.ID))
		if p.Folder != at && p.Link != at {
			s.t.Errorf("package %s at %+v, not at %s", p.ID, p.Location, at)
		}
		if err := relocatetest.VerifyPackage(fsys.OS{}, p.Folder, s.index.FileList(p.ID)); err != nil {
			s.t.Errorf("package %s: %v", p.ID, err)
		}
	}
	if es, _ := os.ReadDir(filepath.Join(target, storeroot.RelocateDir)); len(es) > 0 {
		s.t.Errorf("the temporary folder holds %d entries", len(es))
	}
	for _, ent := range s.journal.Open() {
		if ent.Kind != relocate.KindLeftover || !slices.Contains(leftoversOf, ent.Package) {
			s.t.Errorf("journal entry open: %+v", ent)
		}
	}
}

// TestRelocationBetweenDrives moves a store from D: to E: (a copy, verified,
// then the source removed) with one file open for serving (sharing delete)
// during the move, then within E: (one MoveFileEx per package).
func TestRelocationBetweenDrives(t *testing.T) {
	d, e := winetest.Drive(t, "ext4", 0), winetest.Drive(t, "ext4", 1)
	s := newWinStore(t, winetest.TempDir(t, d), 4)
	served := filepath.Join(s.from, string(relocatetest.ID(1)), "dir0", "file 0.bin")
	release, err := winetest.Hold(served, true)
	if err != nil {
		t.Fatal(err)
	}
	released := false
	defer func() {
		if !released {
			release()
		}
	}()

	target := filepath.Join(winetest.TempDir(t, e), "Wharf", "store")
	req := relocate.Request{Target: target, From: s.from, Default: s.from, Reserve: relocate.Reserve{Percent: 5}}
	res := s.run(req)
	if res.Status&wharf.RelocationSuccess == 0 || res.Moved != 4 || res.Plan.ByCopy != 4 {
		t.Fatalf("D: to E:: status %s, moved %d, %d by copy; not moved %+v; plan %+v", res.Status, res.Moved, res.Plan.ByCopy, res.NotMoved, res.Plan)
	}
	if res.Plan.FSType == "" || !strings.EqualFold(res.Plan.VolumeRoot, e) {
		t.Errorf("plan: volume %q, file system %q; want %s", res.Plan.VolumeRoot, res.Plan.FSType, e)
	}
	s.verify(target, relocatetest.ID(1))
	for _, p := range s.index.All() {
		if _, err := os.Lstat(filepath.Join(s.from, string(p.ID))); p.ID != relocatetest.ID(1) && !os.IsNotExist(err) {
			t.Errorf("package %s is still at the old location: %v", p.ID, err)
		}
	}
	// The served file was moved like the others; its old name may stay
	// until the reader lets go (delete pending), as a journaled leftover
	// that a later Recover removes.
	release()
	released = true
	if err := s.engine().Recover(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{string(relocatetest.ID(1)), filepath.Join(storeroot.TrashDir, string(relocatetest.ID(1)))} {
		if _, err := os.Lstat(filepath.Join(s.from, dir)); !os.IsNotExist(err) {
			t.Errorf("the served package's old folder %s is still there after Recover: %v", dir, err)
		}
	}
	if open := s.journal.Open(); len(open) > 0 {
		t.Errorf("journal entries open after Recover: %+v", open)
	}

	again := filepath.Join(e, filepath.Base(filepath.Dir(filepath.Dir(target))), "again")
	res = s.run(relocate.Request{Target: again, From: target, Default: s.from})
	if res.Status&wharf.RelocationSuccess == 0 || res.Plan.ByRename != 4 || res.BytesCopied != 0 {
		t.Fatalf("within E:: status %s, %d by rename, %d bytes copied; %+v", res.Status, res.Plan.ByRename, res.BytesCopied, res.NotMoved)
	}
	s.verify(again)
}

// TestHeldFileLeftBehindJunction: a package with a file another process
// holds open without FILE_SHARE_DELETE (an antivirus) cannot be moved: it
// stays whole where it is, with a junction at the target, served through
// it, and the attempt ends with the warning; once the handle is closed a
// retry replaces the junction by the folder.
func TestHeldFileLeftBehindJunction(t *testing.T) {
	d, e := winetest.Drive(t, "ext4", 0), winetest.Drive(t, "ext4", 1)
	s := newWinStore(t, winetest.TempDir(t, d), 3)
	stuck := relocatetest.ID(2)
	held := filepath.Join(s.from, string(stuck), "dir1", "file 1.bin")
	release, err := winetest.Hold(held, false)
	if err != nil {
		t.Fatal(err)
	}
	released := false
	defer func() {
		if !released {
			release()
		}
	}()
	target := filepath.Join(winetest.TempDir(t, e), "store")
	req := relocate.Request{Target: target, From: s.from, Default: s.from}
	res := s.run(req)
	if res.Moved != 2 || len(res.NotMoved) != 1 {
		t.Fatalf("status %s, moved %d; not moved %+v", res.Status, res.Moved, res.NotMoved)
	}
	r := res.NotMoved[0]
	if r.Package != stuck || r.Cause != relocate.CauseNotRemovable || !strings.Contains(r.Reason, "another process holds it open") ||
		!strings.Contains(r.Reason, held) {
		t.Errorf("not moved: %+v; want %s, not-removable, naming %s held by another process", r, stuck, held)
	}
	if err := relocatetest.VerifyPackage(fsys.OS{}, filepath.Join(s.from, string(stuck)), s.index.FileList(stuck)); err != nil {
		t.Errorf("the held package is not whole at its old place: %v", err)
	}
	if es, _ := os.ReadDir(filepath.Join(target, storeroot.RelocateDir)); len(es) > 0 {
		t.Errorf("the discarded copy is still in the temporary folder: %d entries", len(es))
	}
	if r.Outcome != relocate.Linked && strings.Contains(r.Reason, "FSCTL_SET_REPARSE_POINT") {
		winetest.SkipGap(t, "FSCTL_SET_REPARSE_POINT (the junction of the link fallback)",
			"the held package was kept back whole, as it must be, but its junction failed: "+r.Reason[strings.Index(r.Reason, "FSCTL_SET_REPARSE_POINT"):])
	}
	if r.Outcome != relocate.Linked || res.Status&wharf.RelocationSomeNotMoved == 0 || res.Warning != "Some of the files have not been moved to the new location." {
		t.Fatalf("status %s, warning %q, package %+v; want it linked with the warning", res.Status, res.Warning, r)
	}
	link := filepath.Join(target, string(stuck))
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&(os.ModeSymlink|os.ModeIrregular) == 0 {
		t.Fatalf("%s is %v, %v; want a junction", link, fi, err)
	}
	if got, err := os.ReadFile(filepath.Join(link, "dir0", "file 0.bin")); err != nil || !bytes.Equal(got, s.contents[stuck]["dir0/file 0.bin"]) {
		t.Errorf("reading through the junction: %d bytes, %v", len(got), err)
	}
	s.verify(target)

	release()
	released = true
	res = s.run(relocate.Request{Target: target, From: target, Default: s.from, Retry: true})
	if res.Status&wharf.RelocationSuccess == 0 || res.Moved != 1 {
		t.Fatalf("retry: status %s, moved %d; %+v", res.Status, res.Moved, res.NotMoved)
	}
	if fi, err := os.Lstat(link); err != nil || !fi.IsDir() || fi.Mode()&(os.ModeSymlink|os.ModeIrregular) != 0 {
		t.Errorf("after the retry %s is %v, %v; want the folder", link, fi, err)
	}
	if _, err := os.Lstat(filepath.Join(s.from, string(stuck))); !os.IsNotExist(err) {
		t.Errorf("the old folder is still there: %v", err)
	}
	s.verify(target)
}

// TestHeldFileMovesOnceReleased: the package a held file kept back moves by
// the next attempt once the handle is closed — a retry of its link where
// junctions can be made, a new attempt where they cannot (Wine).
func TestHeldFileMovesOnceReleased(t *testing.T) {
	d, e := winetest.Drive(t, "ext4", 0), winetest.Drive(t, "ext4", 1)
	s := newWinStore(t, winetest.TempDir(t, d), 2)
	stuck := relocatetest.ID(0)
	release, err := winetest.Hold(filepath.Join(s.from, string(stuck), "dir0", "file 0.bin"), false)
	if err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(winetest.TempDir(t, e), "store")
	res := s.run(relocate.Request{Target: target, From: s.from, Default: s.from})
	release()
	if res.Moved != 1 || len(res.NotMoved) != 1 || res.NotMoved[0].Package != stuck {
		t.Fatalf("held: status %s, moved %d, not moved %+v", res.Status, res.Moved, res.NotMoved)
	}
	p, _ := s.index.Get(stuck)
	if p.Folder != filepath.Join(s.from, string(stuck)) {
		t.Errorf("the held package's folder in the index is %s", p.Folder)
	}
	retry := p.Link != ""
	res = s.run(relocate.Request{Target: target, From: target, Default: s.from, Retry: retry})
	if res.Status&wharf.RelocationSuccess == 0 || res.Moved != 1 {
		t.Fatalf("once released (retry %v): status %s, moved %d; %+v", retry, res.Status, res.Moved, res.NotMoved)
	}
	s.verify(target)
	if _, err := os.Lstat(filepath.Join(s.from, string(stuck))); !os.IsNotExist(err) {
		t.Errorf("the old folder is still there: %v", err)
	}
}

// TestPrerequisitesOnWindows: the plan refuses, each with its bit, a target
// in every known folder, on a CD-ROM, network or removable drive, and one
// whose longest path would pass 8,184 characters; the default location is
// allowed even under Program Files.
func TestPrerequisitesOnWindows(t *testing.T) {
	d := winetest.Drive(t, "ext4", 0)
	s := newWinStore(t, winetest.TempDir(t, d), 1)
	e := s.engine()
	plan := func(target, def string) *relocate.Plan {
		t.Helper()
		if def == "" {
			def = s.from
		}
		p, err := e.Plan(context.Background(), relocate.Request{Target: target, From: s.from, Default: def})
		if err != nil {
			t.Fatalf("Plan(%s): %v", target, err)
		}
		return p
	}
	for _, id := range []*windows.KNOWNFOLDERID{windows.FOLDERID_Windows, windows.FOLDERID_ProgramFiles,
		windows.FOLDERID_ProgramFilesX86, windows.FOLDERID_ProgramData, windows.FOLDERID_UserProfiles} {
		dir, err := windows.KnownFolderPath(id, windows.KF_FLAG_DEFAULT)
		if err != nil {
			t.Fatal(err)
		}
		p := plan(filepath.Join(dir, "Wharf store"), "")
		if p.OK || p.Status&wharf.RelocationKnownFolder == 0 {
			t.Errorf("a target in %s: status %s, want known-folder", dir, p.Status)
		}
	}
	pf, _ := windows.KnownFolderPath(windows.FOLDERID_ProgramFiles, windows.KF_FLAG_DEFAULT)
	def := filepath.Join(pf, "Wharf", "Package Delivery")
	if p := plan(def, def); p.Status&wharf.RelocationKnownFolder != 0 {
		t.Errorf("the default location %s: status %s, want no known-folder", def, p.Status)
	}

	for _, tt := range []struct {
		kind string
		bits wharf.RelocationStatus
	}{
		{"cdrom", wharf.RelocationNotFixedMedia | wharf.RelocationUnsupportedFilesystem},
		{"network", wharf.RelocationNotFixedMedia},
		{"removable", wharf.RelocationNotFixedMedia},
	} {
		root := winetest.Drive(t, tt.kind, 0)
		p := plan(filepath.Join(root, "store"), "")
		if p.OK || p.Status&tt.bits != tt.bits {
			t.Errorf("a target on the %s drive %s: status %s, want %s", tt.kind, root, p.Status, tt.bits)
		}
	}

	// Path length: the package's longest file is dir0\file 0.bin; a target
	// long enough puts the copy's path (<target>\.wharf-relocate\<id>\...)
	// past 8184 characters. Nothing is created: the plan counts.
	long := filepath.Join(d, strings.Repeat("t", 8184-len(d)-30))
	p := plan(long, "")
	if p.OK || p.Status&wharf.RelocationPathTooLong == 0 || p.LongestPathLen <= 8184 || p.PathUnit != "characters" {
		t.Errorf("a %d-character target: status %s, longest path %d %s; want path-too-long", len(long), p.Status, p.LongestPathLen, p.PathUnit)
	}
	if p.Status&wharf.RelocationKnownFolder != 0 {
		t.Errorf("the long target also got known-folder: %s", p.Status)
	}
	ok := plan(filepath.Join(winetest.Drive(t, "ext4", 1), "store"), "")
	if !ok.OK {
		t.Errorf("a plain target on E:: status %s; %+v", ok.Status, ok.Prerequisites)
	}
}

// TestFATRefused: a target on a FAT volume is refused (the FAT32 and exFAT
// names themselves are checked in volume.TestFileSystemNames).
func TestFATRefused(t *testing.T) {
	var fat []string
	if vols, err := volume.New().Volumes(); err == nil {
		for _, v := range vols {
			if strings.HasPrefix(strings.ToUpper(v.FSType), "FAT") || strings.EqualFold(v.FSType, "exFAT") {
				fat = append(fat, v.Root)
			}
		}
	}
	if len(fat) == 0 {
		winetest.SkipGap(t, "GetVolumeInformationW on a FAT volume",
			"Wine 8 names the file system of a drive backed by a folder on a fusefat mount (or on a FAT image given as its device) NTFS; the kernel's vfat, which might show, cannot be mounted here")
		t.Skip("no FAT volume on this machine")
	}
	s := newWinStore(t, t.TempDir(), 1)
	p, err := s.engine().Plan(context.Background(), relocate.Request{Target: filepath.Join(fat[0], "store"), From: s.from, Default: s.from})
	if err != nil {
		t.Fatal(err)
	}
	if p.OK || p.Status&wharf.RelocationUnsupportedFilesystem == 0 {
		t.Errorf("a target on FAT volume %s: status %s, want unsupported-filesystem", fat[0], p.Status)
	}
}
