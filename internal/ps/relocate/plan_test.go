//go:build !windows

// Unix paths over the in-memory fakes: not run on Windows, where the
// *_windows_test.go files test the same behaviour on real drives.

package relocate_test

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/wharf-project/wharf/internal/ps/fsys/faultfs"
	"github.com/wharf-project/wharf/internal/ps/fsys/memfs"
	"github.com/wharf-project/wharf/internal/ps/relocate"
	"github.com/wharf-project/wharf/internal/ps/relocate/relocatetest"
	"github.com/wharf-project/wharf/internal/ps/storeroot"
	"github.com/wharf-project/wharf/internal/ps/volume"
	"github.com/wharf-project/wharf/internal/wharf"
)

func TestPlanFigures(t *testing.T) {
	w := newWorld(t)
	w.add(1, defLoc, 3)
	w.add(2, defLoc, 2)
	w.add(3, rotLoc, 4)
	plan, err := w.engine().Plan(context.Background(), req("/vol/c/store"))
	if err != nil {
		t.Fatal(err)
	}
	if !plan.OK || plan.Status != 0 || len(plan.Prerequisites) != 6 {
		t.Fatalf("plan %+v", plan)
	}
	for _, c := range plan.Prerequisites {
		if !c.OK || c.Detail == "" {
			t.Errorf("check %+v", c)
		}
	}
	p3, _ := w.index.Get(relocatetest.ID(3))
	p1, _ := w.index.Get(relocatetest.ID(1))
	p2, _ := w.index.Get(relocatetest.ID(2))
	if plan.ByRename != 1 || plan.ByCopy != 2 || plan.CopyBytes != p1.Size+p2.Size || plan.Rotated != 1 {
		t.Errorf("by rename %d, by copy %d (%d bytes), rotated %d", plan.ByRename, plan.ByCopy, plan.CopyBytes, plan.Rotated)
	}
	reserve := uint64(volTotal * 5 / 100)
	if plan.ReserveBytes != reserve || plan.NeededBytes != uint64(p1.Size+p2.Size)+reserve || plan.FreeBytes != volTotal/2 {
		t.Errorf("space: reserve %d needed %d free %d", plan.ReserveBytes, plan.NeededBytes, plan.FreeBytes)
	}
	if plan.UsedMiB != 1 || plan.RequiredMiB != 1 || plan.FreeMiB != volTotal/2>>20 {
		t.Errorf("MiB: used %d required %d free %d", plan.UsedMiB, plan.RequiredMiB, plan.FreeMiB)
	}
	// Package 3's longest path is as long as package 1's: the first wins.
	wantLongest := "/vol/c/store/" + string(relocatetest.ID(1)) + "/" + p3.LongestPath
	if plan.LongestPath != wantLongest || plan.LongestPathLen != len(wantLongest) || plan.PathLimit != 4095 {
		t.Errorf("longest %q (%d of %d), want %q", plan.LongestPath, plan.LongestPathLen, plan.PathLimit, wantLongest)
	}
	if !strings.Contains(plan.CheckedPath, storeroot.RelocateDir) {
		t.Errorf("checked path %q is not the temporary one", plan.CheckedPath)
	}
	if _, err := json.Marshal(plan); err != nil {
		t.Fatal(err)
	}
	if len(w.journal.History()) != 0 {
		t.Error("Plan wrote to the journal")
	}
}

// TestPrerequisites fails each prerequisite alone, then several at once:
// every failing one is reported, and nothing moves.
func TestPrerequisites(t *testing.T) {
	type setup func(w *world) relocate.Request
	at := func(target string) setup { return func(*world) relocate.Request { return req(target) } }
	cases := []struct {
		name   string
		setup  setup
		want   wharf.RelocationStatus
		detail string // in the first failing check's detail
	}{
		{"removable media", func(w *world) relocate.Request {
			w.facts.Update(volB, func(v *volume.Info) { v.Fixed, v.FixedReason = false, "removable device sdb" })
			return req("/vol/b/store")
		}, wharf.RelocationNotFixedMedia, "removable device sdb"},
		{"FAT", func(w *world) relocate.Request {
			w.facts.Update(volB, func(v *volume.Info) {
				v.FSType = "vfat"
				v.Supported, v.SupportedReason = volume.SupportedFS("linux", "vfat")
			})
			return req("/vol/b/store")
		}, wharf.RelocationUnsupportedFilesystem, "vfat"},
		{"not enough space", func(w *world) relocate.Request {
			w.facts.SetAvail(volB, 4*gib) // the reserve alone is 5 GiB
			return req("/vol/b/store")
		}, wharf.RelocationInsufficientSpace, "MiB needed"},
		{"space for the reserve but not the packages", func(w *world) relocate.Request {
			w.facts.SetAvail(volB, 5*gib+100)
			return req("/vol/b/store")
		}, wharf.RelocationInsufficientSpace, "MiB of packages"},
		{"known folder", at("/etc/wharf"), wharf.RelocationKnownFolder, "/etc"},
		{"root folder", at("/"), wharf.RelocationKnownFolder | wharf.RelocationInvalidTarget, "/"},
		{"path too long", func(w *world) relocate.Request {
			// The final paths fit (4089 bytes), those of the copies
			// under .wharf-relocate do not.
			return req("/vol/b/" + strings.Repeat("abcdefghi/", 403))
		}, wharf.RelocationPathTooLong, "limit 4095"},
		{"path element too long", func(w *world) relocate.Request {
			return req("/vol/b/" + strings.Repeat("x", 256) + "/store")
		}, wharf.RelocationPathTooLong, "limit 255"},
		{"path element too long for the file system", func(w *world) relocate.Request {
			// As the kernel does: a name over 255 bytes is ENAMETOOLONG,
			// not "does not exist". Only path-too-long fails (issue 16:
			// the valid-target check failed too).
			long := "/vol/b/" + strings.Repeat("x", 300)
			w.ffs.Fail(faultfs.Rule{Op: faultfs.OpAny, Path: long, Err: syscall.ENAMETOOLONG})
			w.ffs.Fail(faultfs.Rule{Op: faultfs.OpAny, Path: long + "/", Err: syscall.ENAMETOOLONG})
			return req(long + "/store")
		}, wharf.RelocationPathTooLong, "limit 255"},
		{"relative", at("store"), wharf.RelocationInvalidTarget, "not an absolute path"},
		{"a file", func(w *world) relocate.Request {
			if err := w.mem.WriteFile("/vol/b/file", []byte("x")); err != nil {
				w.t.Fatal(err)
			}
			return req("/vol/b/file")
		}, wharf.RelocationInvalidTarget, "is a file"},
		{"below a file", func(w *world) relocate.Request {
			if err := w.mem.WriteFile("/vol/b/file", []byte("x")); err != nil {
				w.t.Fatal(err)
			}
			return req("/vol/b/file/store")
		}, wharf.RelocationInvalidTarget, "is a file"},
		{"someone else's files", func(w *world) relocate.Request {
			if err := w.mem.WriteFile("/vol/b/data/thesis.odt", []byte("x")); err != nil {
				w.t.Fatal(err)
			}
			return req("/vol/b/data")
		}, wharf.RelocationInvalidTarget, "thesis.odt"},
		{"another server's store", func(w *world) relocate.Request {
			if err := w.mem.WriteFile("/vol/b/store/"+storeroot.MarkerName, []byte(`{"server":"ps-other"}`)); err != nil {
				w.t.Fatal(err)
			}
			return req("/vol/b/store")
		}, wharf.RelocationInvalidTarget, "ps-other"},
		{"inside the current location", at(defLoc + "/sub"), wharf.RelocationInvalidTarget, "inside"},
		{"inside a rotated store", at(rotLoc + "/sub"), wharf.RelocationInvalidTarget, "inside the store"},
		{"inside a custom-location package", func(w *world) relocate.Request {
			p, _ := w.index.Get(relocatetest.ID(3))
			return req(filepath.Join(p.Folder, "sub"))
		}, wharf.RelocationInvalidTarget, "inside package"},
		{"read-only volume", func(w *world) relocate.Request {
			w.facts.Update(volB, func(v *volume.Info) { v.ReadOnly = true })
			if err := w.mem.SetReadOnly(volB, true); err != nil {
				w.t.Fatal(err)
			}
			return req("/vol/b/store")
		}, wharf.RelocationInvalidTarget, "read-only"},
		{"several at once", func(w *world) relocate.Request {
			w.facts.Update(volB, func(v *volume.Info) {
				v.Fixed, v.FixedReason = false, "network filesystem nfs4"
				v.Supported, v.SupportedReason = false, "nfs4 is not supported"
				v.AvailBytes = 1
			})
			if err := w.mem.WriteFile("/vol/b/data/x", []byte("x")); err != nil {
				w.t.Fatal(err)
			}
			return req("/vol/b/data/" + strings.Repeat("y", 300))
		}, wharf.RelocationNotFixedMedia | wharf.RelocationUnsupportedFilesystem | wharf.RelocationInsufficientSpace |
			wharf.RelocationPathTooLong, "nfs4"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t)
			w.add(1, defLoc, 2)
			w.add(2, rotLoc, 2)
			custom := w.add(3, "/vol/c", 1)
			custom.Custom = true
			w.index.Add(custom, w.index.FileList(custom.ID))
			r := tc.setup(w)
			r.Manual = true
			before := w.snapshot()
			res := w.run(w.engine(), r)
			wantStatus(t, res, tc.want|wharf.RelocationManual)
			plan := res.Plan
			if plan.OK {
				t.Fatal("plan OK")
			}
			var failed []string
			for _, c := range plan.Prerequisites {
				if !c.OK && !c.Skipped {
					failed = append(failed, c.Name)
					if c.Detail == "" {
						t.Errorf("%s failed without a detail", c.Name)
					}
				}
			}
			if got, want := strings.Join(failed, ","), strings.Join(tc.want.Names(), ","); got != want {
				t.Errorf("failed checks %s, want %s", got, want)
			}
			if !strings.Contains(plan.String(), tc.detail) {
				t.Errorf("plan %q does not say %q", plan.String(), tc.detail)
			}
			if after := w.snapshot(); after != before {
				t.Errorf("a refused attempt changed something:\nbefore:\n%s\nafter:\n%s", before, after)
			}
			if len(w.journal.History()) != 0 || w.index.SetLocations() != 0 {
				t.Error("a refused attempt wrote to the journal or the index")
			}
		})
	}
}

func TestPlanAllowsTheDefaultLocation(t *testing.T) {
	w := newWorld(t)
	w.add(1, defLoc, 1)
	w.add(2, rotLoc, 1)
	e := w.engine(func(o *relocate.Options) {
		o.KnownFolder = func(p string) (bool, string) { return true, "/vol" } // e.g. C:\Program Files
	})
	r := req(defLoc)
	r.From = "/vol/b/store"
	plan, err := e.Plan(context.Background(), r)
	if err != nil {
		t.Fatal(err)
	}
	if !plan.OK || plan.AlreadyThere != 1 || plan.ByCopy != 1 {
		t.Fatalf("plan %s (already there %d, by copy %d)", plan, plan.AlreadyThere, plan.ByCopy)
	}
	r.Target = "/vol/b/other"
	if plan, _ := e.Plan(context.Background(), r); plan.Status != wharf.RelocationKnownFolder {
		t.Fatalf("a known folder other than the default: %s", plan.Status)
	}
}

func TestPlanVolumeEntriesDoNotCount(t *testing.T) {
	w := newWorld(t)
	for _, d := range []string{"/vol/b/lost+found", "/vol/b/System Volume Information", "/vol/b/$RECYCLE.BIN"} {
		if err := w.mem.MkdirAll(d); err != nil {
			t.Fatal(err)
		}
	}
	w.add(1, defLoc, 1)
	res := w.run(w.engine(), req(volB))
	wantStatus(t, res, wharf.RelocationSuccess)
	w.check(volB)
}

// TestInterruptedMarkerDoesNotSpoilATarget answers the question of issue
// 15: can a crash while a root's marker is written leave a file that makes
// the folder refuse as a relocation target? Before the store layout had one
// owner, the downloader wrote markers through durable.WriteFile, whose
// temporary file is named .wharf-store.tmp-<random>, a name the engine did
// not tolerate: a folder holding only that file was "not empty and not a
// Wharf store" and refused. Now every marker is written by
// storeroot.Roots.Prepare, and every name it (or the old writer) leaves is
// Wharf's own: the folder is accepted, after a crash at any operation of
// Prepare and with what the old writer left.
func TestInterruptedMarkerDoesNotSpoilATarget(t *testing.T) {
	const target = "/vol/b/store"
	t.Run("left by the old writer", func(t *testing.T) {
		w := newWorld(t)
		w.add(1, defLoc, 1)
		if err := w.mem.WriteFile(target+"/.wharf-store.tmp-8c1f03aa9b2e", []byte(`{"server":"ps-te`)); err != nil {
			t.Fatal(err)
		}
		plan, err := w.engine().Plan(context.Background(), req(target))
		if err != nil || !plan.OK {
			t.Fatalf("plan of a folder holding an interrupted marker: %s, %v", plan, err)
		}
		res := w.run(w.engine(), req(target))
		wantStatus(t, res, wharf.RelocationSuccess)
		w.check(target)
	})
	clean := faultfs.New(memfs.New())
	if err := storeroot.New(clean, server, nil).Prepare(target); err != nil {
		t.Fatal(err)
	}
	n := clean.Ops()
	for k := 0; k <= n; k++ {
		w := newWorld(t)
		w.add(1, defLoc, 1)
		w.ffs.CrashAt(k)
		_ = storeroot.New(w.ffs, server, nil).Prepare(target)
		w.mem.Crash()
		w.ffs = faultfs.New(w.mem)
		plan, err := w.engine().Plan(context.Background(), req(target))
		if err != nil || !plan.OK {
			t.Fatalf("crash at op %d of %d while marking %s: plan %s, %v", k, n, target, plan, err)
		}
		res := w.run(w.engine(), req(target))
		wantStatus(t, res, wharf.RelocationSuccess)
		w.check(target)
	}
}
