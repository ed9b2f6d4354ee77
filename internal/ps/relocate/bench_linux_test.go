package relocate_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wharf-project/wharf/internal/api"
	"github.com/wharf-project/wharf/internal/ps/fsys"
	"github.com/wharf-project/wharf/internal/ps/relocate"
	"github.com/wharf-project/wharf/internal/ps/relocate/relocatetest"
	"github.com/wharf-project/wharf/internal/ps/store"
	"github.com/wharf-project/wharf/internal/ps/volume"
	"github.com/wharf-project/wharf/internal/testenv/loopfs"
	"github.com/wharf-project/wharf/internal/wharf"
)

// benchStore describes a package store to generate: sizes(p) lists the file
// sizes of package p.
type benchStore struct {
	name     string
	packages int
	sizes    func(p int) []int
}

var (
	// ~20,000 small files: 1,000 packages of 20 files of 1-16 KiB.
	smallStore = benchStore{"20k-small-files", 1000, func(p int) []int {
		s := make([]int, 20)
		for i := range s {
			s[i] = 1024 * (1 + (p*7+i*13)%16)
		}
		return s
	}}
	// ~2 GiB mixed: 64 packages of one 16 MiB file, eight of 1 MiB and fifty
	// of 16 KiB, and 4 packages of one 100 MiB file.
	mixedStore = benchStore{"2GiB-mixed", 68, func(p int) []int {
		if p >= 64 {
			return []int{100 << 20}
		}
		s := []int{16 << 20}
		for i := 0; i < 8; i++ {
			s = append(s, 1<<20)
		}
		for i := 0; i < 50; i++ {
			s = append(s, 16<<10)
		}
		return s
	}}
)

// benchState is where the engine keeps its index and journal in a
// benchmark: the PS's SQLite state DB (WHARF_BENCH_STATE=db, the default)
// or relocatetest's memory (WHARF_BENCH_STATE=memory).
type benchState struct {
	mem *relocatetest.Index
	db  *store.Store
}

func newBenchState(b *testing.B) *benchState {
	if os.Getenv("WHARF_BENCH_STATE") == "memory" {
		return &benchState{mem: relocatetest.NewIndex()}
	}
	db, err := store.Open(context.Background(), filepath.Join(b.TempDir(), "ps.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	return &benchState{db: db}
}

func (s *benchState) add(p relocate.Package, files []wharf.File) {
	if s.mem != nil {
		s.mem.Add(p, files)
		return
	}
	sp := store.Package{ID: string(p.ID), Name: "bench", Version: "1", Root: filepath.Dir(p.Folder), Path: p.Folder,
		State: api.StateReady, Size: p.Size, FileCount: len(files)}
	for _, f := range files {
		sp.Files = append(sp.Files, store.File{File: f, ModTime: time.Unix(1, 0)})
	}
	if err := s.db.Put(context.Background(), sp); err != nil {
		panic(err)
	}
}

func (s *benchState) engine(b testing.TB) *relocate.Engine {
	opt := relocate.Options{FS: fsys.OS{}, Facts: volume.New(), Server: "bench", Parallel: benchParallel}
	if s.mem != nil {
		opt.Index, opt.Journal = s.mem, &relocatetest.Journal{}
	} else {
		opt.Index, opt.Journal = s.db.RelocationIndex(), s.db.RelocationJournal()
	}
	e, err := relocate.New(opt)
	if err != nil {
		b.Fatal(err)
	}
	return e
}

// generate writes the store below root, one folder per package, and fills
// the index with its packages and manifests.
func generate(b testing.TB, root string, st benchStore, idx interface {
	add(relocate.Package, []wharf.File)
}) []wharf.PackageID {
	b.Helper()
	if err := os.MkdirAll(root, 0o755); err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	buf := make([]byte, 1<<20)
	var ids []wharf.PackageID
	for p := 0; p < st.packages; p++ {
		id := relocatetest.ID(p + 1)
		ids = append(ids, id)
		folder := filepath.Join(root, string(id))
		var files []wharf.File
		var size int64
		longest := ""
		for i, n := range st.sizes(p) {
			rel := fmt.Sprintf("d%d/file-%03d.bin", i%4, i)
			if err := os.MkdirAll(filepath.Join(folder, filepath.Dir(rel)), 0o755); err != nil {
				b.Fatal(err)
			}
			f, err := os.Create(filepath.Join(folder, rel))
			if err != nil {
				b.Fatal(err)
			}
			h := sha256.New()
			for left := n; left > 0; {
				chunk := buf[:min(left, len(buf))]
				for j := 0; j+8 <= len(chunk); j += 8 {
					v := rng.Uint64()
					chunk[j], chunk[j+1], chunk[j+2], chunk[j+3] = byte(v), byte(v>>8), byte(v>>16), byte(v>>24)
					chunk[j+4], chunk[j+5], chunk[j+6], chunk[j+7] = byte(v>>32), byte(v>>40), byte(v>>48), byte(v>>56)
				}
				f.Write(chunk)
				h.Write(chunk)
				left -= len(chunk)
			}
			f.Close()
			files = append(files, wharf.File{Path: rel, Size: int64(n), SHA256: wharf.Digest(hex.EncodeToString(h.Sum(nil)))})
			size += int64(n)
			if len(rel) > len(longest) {
				longest = rel
			}
		}
		idx.add(relocate.Package{ID: id, Location: relocate.Location{Folder: folder}, Size: size, LongestPath: longest}, files)
	}
	return ids
}

// settle writes everything back and drops the page cache, so every run
// starts cold.
func settle(b *testing.B) {
	b.Helper()
	exec.Command("sync").Run()
	if err := os.WriteFile("/proc/sys/vm/drop_caches", []byte("3"), 0o644); err != nil {
		b.Logf("cannot drop caches (%v); runs start warm", err)
	}
}

func sh(b *testing.B, script string) {
	b.Helper()
	if out, err := exec.Command("sh", "-c", script).CombinedOutput(); err != nil {
		b.Fatalf("%s: %v\n%s", script, err, out)
	}
}

// timed runs fn and a final sync, and returns the time both took.
func timed(fn func()) time.Duration {
	start := time.Now()
	fn()
	exec.Command("sync").Run()
	return time.Since(start)
}

// BenchmarkCrossVolume relocates a generated store from one loop-mounted
// ext4 volume to another with the engine (every byte hashed, checked and
// fsynced) and, on the same trees and volumes in the same run, with cp -a +
// rm -rf, mv, rsync --remove-source-files and four parallel cp -a. Caches
// are dropped before every run and every figure includes a final sync. It
// reports each tool's time divided by the engine's (above 1: the engine is
// faster).
//
// The engine keeps its index and journal in the PS's state DB, as in
// production (WHARF_BENCH_STATE=memory uses relocatetest's in-memory ones,
// to tell the file-system cost from the database's).
func BenchmarkCrossVolume(b *testing.B) {
	loopfs.RequireRoot(b)
	for _, st := range []benchStore{smallStore, mixedStore} {
		b.Run(st.name, func(b *testing.B) {
			src, dst := loopfs.Ext4(b, 3072), loopfs.Ext4(b, 3072)
			times := map[string]time.Duration{}
			tools := []struct{ name, script string }{
				{"cp-a+rm", `cp -a "$S"/. "$D"/ && rm -rf "$S"/*`},
				{"mv", `mv "$S"/* "$D"/`},
				{"rsync", `rsync -a --remove-source-files "$S"/ "$D"/ && find "$S" -mindepth 1 -type d -empty -delete`},
				{"4x-cp-a", `ls "$S" | split -n r/4 - "$T"/part. && for p in "$T"/part.*; do (cd "$S" && xargs -a "$p" cp -a -t "$D") & done; wait; rm -rf "$S"/*`},
			}
			for i := 0; i < b.N; i++ {
				for _, tool := range tools {
					from, to := filepath.Join(src, "store"), filepath.Join(dst, "store")
					sh(b, fmt.Sprintf(`rm -rf %q %q && mkdir -p %q %q`, from, to, from, to))
					generate(b, from, st, &benchState{mem: relocatetest.NewIndex()})
					settle(b)
					tmp := b.TempDir()
					script := strings.NewReplacer(`"$S"`, fmt.Sprintf("%q", from), `"$D"`, fmt.Sprintf("%q", to), `"$T"`, fmt.Sprintf("%q", tmp)).Replace(tool.script)
					times[tool.name] += timed(func() { sh(b, script) })
				}
				from, to := filepath.Join(src, "Package Delivery"), filepath.Join(dst, "Package Delivery")
				sh(b, fmt.Sprintf(`rm -rf %q/store %q/store %q %q`, src, dst, from, to))
				state := newBenchState(b)
				ids := generate(b, from, st, state)
				e := state.engine(b)
				settle(b)
				var res *relocate.Result
				times["wharf"] += timed(func() {
					var err error
					res, err = e.Run(context.Background(), relocate.Request{Target: to, From: from, Default: from})
					if err != nil {
						b.Fatal(err)
					}
				})
				if !res.Status.Has(wharf.RelocationSuccess) || res.Moved != len(ids) {
					b.Fatalf("relocation: %v, moved %d of %d", res.Status, res.Moved, len(ids))
				}
			}
			w := times["wharf"].Seconds()
			b.ReportMetric(w/float64(b.N), "wharf-s")
			for _, tool := range tools {
				b.ReportMetric(times[tool.name].Seconds()/float64(b.N), tool.name+"-s")
				b.ReportMetric(times[tool.name].Seconds()/w, "speed-vs-"+tool.name)
			}
			b.ReportMetric(0, "ns/op")
		})
	}
}

// BenchmarkSameVolume relocates 100,000 packages to another folder of the
// same ext4 volume: one rename per package.
func BenchmarkSameVolume(b *testing.B) {
	loopfs.RequireRoot(b)
	const n = 100_000
	vol := loopfs.Ext4(b, 8192) // for the inodes: 300,000 files and folders
	var total time.Duration
	for i := 0; i < b.N; i++ {
		from, to := filepath.Join(vol, fmt.Sprintf("a%d", i), "Package Delivery"), filepath.Join(vol, fmt.Sprintf("b%d", i), "Package Delivery")
		state := newBenchState(b)
		generate(b, from, benchStore{"100k", n, func(int) []int { return []int{64} }}, state)
		e := state.engine(b)
		settle(b)
		var res *relocate.Result
		total += timed(func() {
			var err error
			if res, err = e.Run(context.Background(), relocate.Request{Target: to, From: from, Default: from}); err != nil {
				b.Fatal(err)
			}
		})
		if !res.Status.Has(wharf.RelocationSuccess) || res.Moved != n {
			b.Fatalf("relocation: %v, moved %d of %d", res.Status, res.Moved, n)
		}
	}
	b.ReportMetric(total.Seconds()/float64(b.N), "s-per-100k-packages")
	b.ReportMetric(0, "ns/op")
}

// benchParallel is the engine's package parallelism in the benchmarks
// (WHARF_BENCH_PARALLEL, default the engine's own).
var benchParallel = func() int {
	n := 0
	fmt.Sscan(os.Getenv("WHARF_BENCH_PARALLEL"), &n)
	return n
}()
