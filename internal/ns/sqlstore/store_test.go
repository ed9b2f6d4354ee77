package sqlstore_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wharf-project/wharf/internal/ns/catalog"
	"github.com/wharf-project/wharf/internal/ns/sqlstore"
	"github.com/wharf-project/wharf/internal/testenv/pgtest"
	"github.com/wharf-project/wharf/internal/wharf"
)

// TestStore runs the catalog.Store conformance suite on SQLite and on
// PostgreSQL. Each case gets a fresh, empty database.
func TestStore(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) {
		runSuite(t, func(t *testing.T) *sqlstore.Store {
			return open(t, "", t.TempDir())
		})
	})
	t.Run("postgres", func(t *testing.T) {
		runSuite(t, func(t *testing.T) *sqlstore.Store {
			return open(t, pgtest.DSN(t), "")
		})
	})
}

type suiteCase struct {
	name string
	fn   func(t *testing.T, s *sqlstore.Store)
}

var suite = []suiteCase{
	{"PackageRoundTrip", testPackageRoundTrip},
	{"PackageExists", testPackageExists},
	{"PackageNotFound", testPackageNotFound},
	{"DeletePackageCascades", testDeletePackageCascades},
	{"ListPackages", testListPackages},
	{"ManyFiles", testManyFiles},
	{"BlobInUse", testBlobInUse},
	{"Settings", testSettings},
	{"EnrollTokens", testEnrollTokens},
	{"EnrollTokenRace", testEnrollTokenRace},
	{"Servers", testServers},
	{"TouchServer", testTouchServer},
	{"FleetReads", testFleetReads},
	{"LockBlobs", testLockBlobs},
	{"ConsoleSessions", testConsoleSessions},
	{"LoginBuckets", testLoginBuckets},
	{"PackageStates", testPackageStates},
	{"Times", testTimes},
	{"ConcurrentWrites", testConcurrentWrites},
	{"Policies", testPolicies},
	{"LocationsAlertsTasks", testLocationsAlertsTasks},
	{"HealthAndVolumeSamples", testHealth},
	{"Identities", testIdentities},
}

func runSuite(t *testing.T, newStore func(t *testing.T) *sqlstore.Store) {
	for _, c := range suite {
		t.Run(c.name, func(t *testing.T) { c.fn(t, newStore(t)) })
	}
}

func open(t *testing.T, dsn, dataDir string) *sqlstore.Store {
	t.Helper()
	s, err := sqlstore.Open(context.Background(), dsn, dataDir)
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close store: %v", err)
		}
	})
	return s
}

// t0 is a time with nanoseconds in a zone other than UTC: the store must
// hand back t0.UTC() truncated to the microsecond.
var t0 = time.Date(2025, 3, 14, 15, 9, 26, 535897932, time.FixedZone("CET", 3600))

// norm is what the store keeps of a time.
func norm(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

func digest(s string) wharf.Digest {
	sum := sha256.Sum256([]byte(s))
	return wharf.Digest(hex.EncodeToString(sum[:]))
}

func file(path, content string) wharf.File {
	return wharf.File{Path: path, Size: int64(len(content)), SHA256: digest(content)}
}

// newPackage returns a package assigned to servers, or to all when none are
// named.
func newPackage(name, version string, created time.Time, servers ...wharf.ServerName) catalog.Package {
	return catalog.Package{
		ID:        wharf.NewPackageID(),
		Name:      name,
		Version:   version,
		Files:     []wharf.File{file("bin/"+name, name+version), file("README", "read me "+name)},
		AssignAll: len(servers) == 0,
		Servers:   servers,
		CreatedAt: created,
	}
}

// stored is p as Package returns it.
func stored(p catalog.Package) catalog.Package {
	p.Files = append([]wharf.File(nil), p.Files...)
	slices.SortFunc(p.Files, func(a, b wharf.File) int { return strings.Compare(a.Path, b.Path) })
	p.Size, p.FileCount = 0, len(p.Files)
	for _, f := range p.Files {
		p.Size += f.Size
	}
	if len(p.Files) == 0 {
		p.Files = nil
	}
	p.CreatedAt = norm(p.CreatedAt)
	if p.AssignAll || len(p.Servers) == 0 {
		p.Servers = nil
	} else {
		p.Servers = slices.Clone(p.Servers)
		slices.Sort(p.Servers)
		p.Servers = slices.Compact(p.Servers)
	}
	return p
}

// listed is p as ListPackages returns it.
func listed(p catalog.Package) catalog.Package {
	p = stored(p)
	p.Files = nil
	return p
}

func mustCreate(t *testing.T, s *sqlstore.Store, pkgs ...catalog.Package) {
	t.Helper()
	for _, p := range pkgs {
		if err := s.CreatePackage(context.Background(), p); err != nil {
			t.Fatalf("CreatePackage(%s %s): %v", p.Name, p.Version, err)
		}
	}
}

func mustPackage(t *testing.T, s *sqlstore.Store, id wharf.PackageID) catalog.Package {
	t.Helper()
	p, err := s.Package(context.Background(), id)
	if err != nil {
		t.Fatalf("Package(%s): %v", id, err)
	}
	return p
}

func wantErr(t *testing.T, what string, err, kind error) {
	t.Helper()
	if !errors.Is(err, kind) {
		t.Errorf("%s: got error %v, want %v", what, err, kind)
	}
}

func packageNames(pkgs []catalog.Package) []string {
	var names []string
	for _, p := range pkgs {
		names = append(names, p.Name+"@"+p.Version)
	}
	return names
}

func testPackageRoundTrip(t *testing.T, s *sqlstore.Store) {
	p := newPackage("tools", "1.0", t0, "ps-b", "ps-a", "ps-b")
	p.Files = []wharf.File{file("z/last", "zz"), file("a/first", "a"), file("m", ""), file("A/upper", "AA")}
	p.CustomLocation = `D:\Tools`
	p.Signed = true
	p.Size, p.FileCount = 12345, 99 // ignored: the store computes them
	mustCreate(t, s, p)

	got := mustPackage(t, s, p.ID)
	want := stored(p)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Package:\n got %+v\nwant %+v", got, want)
	}
	if got.Size != 5 || got.FileCount != 4 || !reflect.DeepEqual(got.Servers, []wharf.ServerName{"ps-a", "ps-b"}) {
		t.Errorf("Size, FileCount, Servers = %d, %d, %v; want 5, 4, [ps-a ps-b]", got.Size, got.FileCount, got.Servers)
	}

	all := newPackage("all", "1", t0)
	all.Servers = []wharf.ServerName{"ignored"}
	empty := newPackage("empty", "1", t0, "ps-a")
	empty.Files = nil
	mustCreate(t, s, all, empty)
	if got, want := mustPackage(t, s, all.ID), stored(all); !reflect.DeepEqual(got, want) {
		t.Errorf("Package(assigned to all):\n got %+v\nwant %+v", got, want)
	}
	if got, want := mustPackage(t, s, empty.ID), stored(empty); !reflect.DeepEqual(got, want) {
		t.Errorf("Package(no files):\n got %+v\nwant %+v", got, want)
	}
}

func testPackageExists(t *testing.T, s *sqlstore.Store) {
	ctx := context.Background()
	p := newPackage("tools", "1.0", t0)
	mustCreate(t, s, p)

	dup := newPackage("tools", "1.0", t0.Add(time.Hour), "ps-a")
	err := s.CreatePackage(ctx, dup)
	wantErr(t, "CreatePackage(same name and version)", err, wharf.ErrExists)
	if _, err := s.Package(ctx, dup.ID); !errors.Is(err, wharf.ErrNotFound) {
		t.Errorf("failed create left package %s behind: %v", dup.ID, err)
	}

	sameID := newPackage("other", "2.0", t0)
	sameID.ID = p.ID
	wantErr(t, "CreatePackage(same id)", s.CreatePackage(ctx, sameID), wharf.ErrExists)

	// Same name, other version; other name, same version.
	mustCreate(t, s, newPackage("tools", "1.1", t0), newPackage("tools2", "1.0", t0))
	if got, err := s.ListPackages(ctx, catalog.PackageFilter{}); err != nil || len(got) != 3 {
		t.Errorf("ListPackages: %d packages, %v; want 3", len(got), err)
	}
}

func testPackageNotFound(t *testing.T, s *sqlstore.Store) {
	ctx := context.Background()
	id := wharf.NewPackageID()
	_, err := s.Package(ctx, id)
	wantErr(t, "Package(unknown)", err, wharf.ErrNotFound)
	wantErr(t, "DeletePackage(unknown)", s.DeletePackage(ctx, id), wharf.ErrNotFound)
	if got, err := s.ListPackages(ctx, catalog.PackageFilter{}); err != nil || len(got) != 0 {
		t.Errorf("ListPackages on an empty store = %v, %v; want nothing", got, err)
	}
}

func testDeletePackageCascades(t *testing.T, s *sqlstore.Store) {
	ctx := context.Background()
	p := newPackage("tools", "1.0", t0, "ps-a")
	keep := newPackage("keep", "1.0", t0, "ps-a")
	mustCreate(t, s, p, keep)
	states := []catalog.PackageState{
		{Server: "ps-a", PackageID: p.ID, State: "ready", UpdatedAt: t0},
		{Server: "ps-a", PackageID: keep.ID, State: "ready", UpdatedAt: t0},
	}
	if err := s.PutPackageStates(ctx, states); err != nil {
		t.Fatal(err)
	}

	if err := s.DeletePackage(ctx, p.ID); err != nil {
		t.Fatalf("DeletePackage: %v", err)
	}
	_, err := s.Package(ctx, p.ID)
	wantErr(t, "Package(deleted)", err, wharf.ErrNotFound)
	wantErr(t, "DeletePackage(deleted)", s.DeletePackage(ctx, p.ID), wharf.ErrNotFound)
	if used, err := s.BlobInUse(ctx, p.Files[0].SHA256, ""); err != nil || used {
		t.Errorf("BlobInUse(file of deleted package) = %v, %v; want false", used, err)
	}
	got, err := s.ListPackages(ctx, catalog.PackageFilter{AssignedTo: "ps-a"})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(packageNames(got), []string{"keep@1.0"}) {
		t.Errorf("ListPackages(ps-a) after delete = %v, want [keep@1.0]", packageNames(got))
	}
	gotStates, err := s.PackageStates(ctx, catalog.StateFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(gotStates) != 1 || gotStates[0].PackageID != keep.ID {
		t.Errorf("states after delete = %+v, want only %s's", gotStates, keep.ID)
	}

	// The name and version are free again.
	again := newPackage("tools", "1.0", t0)
	mustCreate(t, s, again)
	if got := mustPackage(t, s, again.ID); !reflect.DeepEqual(got, stored(again)) {
		t.Errorf("re-created package:\n got %+v\nwant %+v", got, stored(again))
	}
}

func testListPackages(t *testing.T, s *sqlstore.Store) {
	ctx := context.Background()
	// Created out of order; listed by name, then creation time.
	b2 := newPackage("beta", "2.0", t0.Add(2*time.Minute), "ps-b", "ps-a")
	a1 := newPackage("alpha", "1.0", t0.Add(time.Minute), "ps-a")
	b1 := newPackage("beta", "1.0", t0)
	bOld := newPackage("beta", "0.9", t0.Add(-time.Hour), "ps-c")
	upper := newPackage("Zeta", "1.0", t0) // bytewise: uppercase sorts first
	mustCreate(t, s, b2, a1, b1, bOld, upper)

	tests := []struct {
		f    catalog.PackageFilter
		want []catalog.Package
	}{
		{catalog.PackageFilter{}, []catalog.Package{upper, a1, bOld, b1, b2}},
		{catalog.PackageFilter{Name: "beta"}, []catalog.Package{bOld, b1, b2}},
		{catalog.PackageFilter{Version: "1.0"}, []catalog.Package{upper, a1, b1}},
		{catalog.PackageFilter{Name: "beta", Version: "2.0"}, []catalog.Package{b2}},
		{catalog.PackageFilter{Name: "gamma"}, nil},
		{catalog.PackageFilter{AssignedTo: "ps-a"}, []catalog.Package{upper, a1, b1, b2}},
		{catalog.PackageFilter{AssignedTo: "ps-b"}, []catalog.Package{upper, b1, b2}},
		{catalog.PackageFilter{AssignedTo: "ps-c"}, []catalog.Package{upper, bOld, b1}},
		{catalog.PackageFilter{AssignedTo: "ps-z"}, []catalog.Package{upper, b1}},
		{catalog.PackageFilter{Name: "beta", AssignedTo: "ps-a"}, []catalog.Package{b1, b2}},
		{catalog.PackageFilter{Name: "alpha", Version: "1.0", AssignedTo: "ps-b"}, nil},
		// Pages and filters, in SQL.
		{catalog.PackageFilter{Limit: 2}, []catalog.Package{upper, a1}},
		{catalog.PackageFilter{Offset: 2, Limit: 2}, []catalog.Package{bOld, b1}},
		{catalog.PackageFilter{Offset: 4, Limit: 2}, []catalog.Package{b2}},
		{catalog.PackageFilter{Offset: 3}, []catalog.Package{b1, b2}},
		{catalog.PackageFilter{Offset: 9, Limit: 2}, nil},
		{catalog.PackageFilter{Query: "ETA"}, []catalog.Package{upper, bOld, b1, b2}},
		{catalog.PackageFilter{Query: "eta 1."}, []catalog.Package{upper, b1}},
		{catalog.PackageFilter{Query: string(a1.ID)[:13]}, []catalog.Package{a1}},
		{catalog.PackageFilter{Query: "%"}, nil},
		{catalog.PackageFilter{Query: "_"}, nil},
		{catalog.PackageFilter{Query: "beta", Offset: 1, Limit: 1}, []catalog.Package{b1}},
		{catalog.PackageFilter{IDs: []wharf.PackageID{b2.ID, upper.ID}}, []catalog.Package{upper, b2}},
		{catalog.PackageFilter{IDs: []wharf.PackageID{}}, nil},
	}
	for _, tt := range tests {
		got, err := s.ListPackages(ctx, tt.f)
		if err != nil {
			t.Errorf("ListPackages(%+v): %v", tt.f, err)
			continue
		}
		var want []catalog.Package
		for _, p := range tt.want {
			want = append(want, listed(p))
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("ListPackages(%+v) = %v, want %v", tt.f, packageNames(got), packageNames(want))
			for i := range min(len(got), len(want)) {
				if !reflect.DeepEqual(got[i], want[i]) {
					t.Errorf("  [%d]:\n got %+v\nwant %+v", i, got[i], want[i])
				}
			}
		}
	}
	for _, tt := range []struct {
		f     catalog.PackageFilter
		count int
		bytes int64
	}{
		{catalog.PackageFilter{}, 5, listed(b2).Size + listed(a1).Size + listed(b1).Size + listed(bOld).Size + listed(upper).Size},
		{catalog.PackageFilter{Query: "beta", Limit: 1}, 3, listed(b2).Size + listed(b1).Size + listed(bOld).Size},
		{catalog.PackageFilter{Name: "gamma"}, 0, 0},
	} {
		got, err := s.CountPackages(ctx, tt.f)
		if err != nil || got.Count != tt.count || got.Bytes != tt.bytes {
			t.Errorf("CountPackages(%+v) = %+v, %v; want %d packages, %d bytes", tt.f, got, err, tt.count, tt.bytes)
		}
	}
	got, _ := s.ListPackages(ctx, catalog.PackageFilter{Name: "beta", Version: "2.0"})
	if len(got) == 1 && (got[0].Files != nil || got[0].FileCount != 2 || got[0].Size == 0 ||
		!reflect.DeepEqual(got[0].Servers, []wharf.ServerName{"ps-a", "ps-b"})) {
		t.Errorf("listed package = %+v, want no files, FileCount 2, a size and servers [ps-a ps-b]", got[0])
	}
}

func testManyFiles(t *testing.T, s *sqlstore.Store) {
	p := newPackage("big", "1.0", t0, "ps-a")
	p.Files = nil
	for i := 499; i >= 0; i-- {
		p.Files = append(p.Files, file(fmt.Sprintf("dir%02d/file%04d.dat", i%17, i), fmt.Sprint("content ", i)))
	}
	mustCreate(t, s, p)
	got := mustPackage(t, s, p.ID)
	if want := stored(p); !reflect.DeepEqual(got, want) {
		t.Errorf("package with %d files did not round-trip: got %d files, size %d; want %d files, size %d",
			len(p.Files), len(got.Files), got.Size, len(want.Files), want.Size)
	}
	list, err := s.ListPackages(context.Background(), catalog.PackageFilter{Name: "big"})
	if err != nil || len(list) != 1 || list[0].FileCount != 500 {
		t.Errorf("ListPackages(big) = %+v, %v; want one package with 500 files", list, err)
	}
}

func testBlobInUse(t *testing.T, s *sqlstore.Store) {
	ctx := context.Background()
	shared := file("lib/shared.dll", "shared")
	onlyA := newPackage("a", "1", t0, "ps-a")
	onlyA.Files = append(onlyA.Files, shared)
	all := newPackage("all", "1", t0)
	b := newPackage("b", "1", t0, "ps-b")
	b.Files = append(b.Files, shared)
	mustCreate(t, s, onlyA, all, b)

	tests := []struct {
		d      wharf.Digest
		server wharf.ServerName
		want   bool
	}{
		{shared.SHA256, "", true},
		{shared.SHA256, "ps-a", true},
		{shared.SHA256, "ps-b", true},
		{shared.SHA256, "ps-c", false},
		{onlyA.Files[0].SHA256, "", true},
		{onlyA.Files[0].SHA256, "ps-a", true},
		{onlyA.Files[0].SHA256, "ps-b", false},
		{all.Files[0].SHA256, "ps-c", true},
		{digest("nowhere"), "", false},
		{digest("nowhere"), "ps-a", false},
	}
	for _, tt := range tests {
		got, err := s.BlobInUse(ctx, tt.d, tt.server)
		if err != nil {
			t.Errorf("BlobInUse(%.8s, %q): %v", tt.d, tt.server, err)
		} else if got != tt.want {
			t.Errorf("BlobInUse(%.8s, %q) = %v, want %v", tt.d, tt.server, got, tt.want)
		}
	}
	if err := s.DeletePackage(ctx, onlyA.ID); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.BlobInUse(ctx, shared.SHA256, "ps-a"); got {
		t.Error("BlobInUse(shared, ps-a) after deleting ps-a's package = true, want false")
	}
	if got, _ := s.BlobInUse(ctx, shared.SHA256, ""); !got {
		t.Error("BlobInUse(shared) after deleting one of two packages = false, want true")
	}
}

func testSettings(t *testing.T, s *sqlstore.Store) {
	ctx := context.Background()
	_, err := s.Setting(ctx, "signing-key")
	wantErr(t, "Setting(unset)", err, wharf.ErrNotFound)

	stored, err := s.InitSetting(ctx, "signing-key", "first")
	if err != nil || !stored {
		t.Fatalf("InitSetting(new) = %v, %v; want true", stored, err)
	}
	stored, err = s.InitSetting(ctx, "signing-key", "second")
	if err != nil || stored {
		t.Fatalf("InitSetting(existing) = %v, %v; want false", stored, err)
	}
	if v, err := s.Setting(ctx, "signing-key"); err != nil || v != "first" {
		t.Errorf("Setting = %q, %v; want first", v, err)
	}
	if ok, err := s.InitSetting(ctx, "empty", ""); err != nil || !ok {
		t.Errorf("InitSetting(empty value) = %v, %v", ok, err)
	}
	if v, err := s.Setting(ctx, "empty"); err != nil || v != "" {
		t.Errorf("Setting(empty) = %q, %v; want an empty value", v, err)
	}

	// Racing initializers: exactly one wins, and its value sticks.
	var wg sync.WaitGroup
	wins := make(chan string, 8)
	for i := range 8 {
		wg.Go(func() {
			v := fmt.Sprint("value ", i)
			ok, err := s.InitSetting(ctx, "raced", v)
			if err != nil {
				t.Errorf("InitSetting(raced): %v", err)
			}
			if ok {
				wins <- v
			}
		})
	}
	wg.Wait()
	close(wins)
	var winners []string
	for v := range wins {
		winners = append(winners, v)
	}
	if len(winners) != 1 {
		t.Fatalf("%d racing InitSetting calls stored their value, want 1", len(winners))
	}
	if v, _ := s.Setting(ctx, "raced"); v != winners[0] {
		t.Errorf("Setting(raced) = %q, want the winner's %q", v, winners[0])
	}
}

func testEnrollTokens(t *testing.T, s *sqlstore.Store) {
	ctx := context.Background()
	expires := t0.Add(time.Hour)
	for _, h := range []string{"tok1", "tok2", "tok3"} {
		if err := s.CreateEnrollToken(ctx, h, expires); err != nil {
			t.Fatalf("CreateEnrollToken(%s): %v", h, err)
		}
	}
	wantErr(t, "CreateEnrollToken(duplicate)", s.CreateEnrollToken(ctx, "tok1", expires), wharf.ErrExists)

	if err := s.ConsumeEnrollToken(ctx, "tok1", t0); err != nil {
		t.Errorf("ConsumeEnrollToken(fresh): %v", err)
	}
	wantErr(t, "ConsumeEnrollToken(used)", s.ConsumeEnrollToken(ctx, "tok1", t0), wharf.ErrNotFound)
	wantErr(t, "ConsumeEnrollToken(unknown)", s.ConsumeEnrollToken(ctx, "nope", t0), wharf.ErrNotFound)
	wantErr(t, "ConsumeEnrollToken(expired)", s.ConsumeEnrollToken(ctx, "tok2", expires.Add(time.Second)), wharf.ErrNotFound)
	wantErr(t, "ConsumeEnrollToken(expiring now)", s.ConsumeEnrollToken(ctx, "tok2", expires), wharf.ErrNotFound)
	if err := s.ConsumeEnrollToken(ctx, "tok2", expires.Add(-time.Microsecond)); err != nil {
		t.Errorf("ConsumeEnrollToken(a microsecond before expiry): %v", err)
	}
	// Time zones do not matter, only instants.
	if err := s.ConsumeEnrollToken(ctx, "tok3", expires.Add(-time.Minute).In(time.FixedZone("X", -11*3600))); err != nil {
		t.Errorf("ConsumeEnrollToken(other zone): %v", err)
	}
}

func testEnrollTokenRace(t *testing.T, s *sqlstore.Store) {
	ctx := context.Background()
	const racers = 16
	for round := range 5 {
		hash := fmt.Sprint("race-", round)
		if err := s.CreateEnrollToken(ctx, hash, t0.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		var (
			wg    sync.WaitGroup
			start = make(chan struct{})
			mu    sync.Mutex
			wins  int
		)
		for range racers {
			wg.Go(func() {
				<-start
				err := s.ConsumeEnrollToken(ctx, hash, t0)
				switch {
				case err == nil:
					mu.Lock()
					wins++
					mu.Unlock()
				case !errors.Is(err, wharf.ErrNotFound):
					t.Errorf("ConsumeEnrollToken: %v", err)
				}
			})
		}
		close(start)
		wg.Wait()
		if wins != 1 {
			t.Errorf("round %d: %d of %d racing enrollments consumed the token, want 1", round, wins, racers)
		}
	}
}

func newServer(name wharf.ServerName) catalog.Server {
	return catalog.Server{
		Name:           name,
		OS:             "windows",
		URL:            "https://" + string(name) + ".example:8443",
		CredentialHash: string(digest("credential of " + string(name))),
		SigningKey:     []byte("key of " + string(name) + "\x00\xff"),
		EnrolledAt:     t0,
	}
}

func wantServer(s catalog.Server) catalog.Server {
	s.EnrolledAt = norm(s.EnrolledAt)
	if !s.LastContact.IsZero() {
		s.LastContact = norm(s.LastContact)
	}
	return s
}

func testServers(t *testing.T, s *sqlstore.Store) {
	ctx := context.Background()
	if got, err := s.ListServers(ctx); err != nil || len(got) != 0 {
		t.Errorf("ListServers(empty) = %v, %v", got, err)
	}
	c, a, b := newServer("ps-c"), newServer("ps-a"), newServer("ps-b")
	b.OS = "linux"
	b.SigningKey = nil
	for _, srv := range []catalog.Server{c, a, b} {
		if err := s.CreateServer(ctx, srv); err != nil {
			t.Fatalf("CreateServer(%s): %v", srv.Name, err)
		}
	}
	dup := newServer("ps-a")
	dup.CredentialHash = string(digest("another credential"))
	wantErr(t, "CreateServer(same name)", s.CreateServer(ctx, dup), wharf.ErrExists)
	sameCred := newServer("ps-d")
	sameCred.CredentialHash = a.CredentialHash
	wantErr(t, "CreateServer(same credential)", s.CreateServer(ctx, sameCred), wharf.ErrExists)

	got, err := s.Server(ctx, "ps-a")
	if err != nil {
		t.Fatalf("Server(ps-a): %v", err)
	}
	if want := wantServer(a); !reflect.DeepEqual(got, want) {
		t.Errorf("Server(ps-a):\n got %+v\nwant %+v", got, want)
	}
	if !got.LastContact.IsZero() {
		t.Errorf("LastContact of a new server = %v, want zero", got.LastContact)
	}
	_, err = s.Server(ctx, "ps-d")
	wantErr(t, "Server(unknown)", err, wharf.ErrNotFound)

	got, err = s.ServerByCredential(ctx, b.CredentialHash)
	if err != nil {
		t.Fatalf("ServerByCredential: %v", err)
	}
	if want := wantServer(b); !reflect.DeepEqual(got, want) {
		t.Errorf("ServerByCredential(ps-b's):\n got %+v\nwant %+v", got, want)
	}
	_, err = s.ServerByCredential(ctx, string(digest("unknown")))
	wantErr(t, "ServerByCredential(unknown)", err, wharf.ErrNotFound)

	list, err := s.ListServers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := []catalog.Server{wantServer(a), wantServer(b), wantServer(c)}
	if !reflect.DeepEqual(list, want) {
		t.Errorf("ListServers:\n got %+v\nwant %+v", list, want)
	}
}

func testTouchServer(t *testing.T, s *sqlstore.Store) {
	ctx := context.Background()
	a := newServer("ps-a")
	if err := s.CreateServer(ctx, a); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "TouchServer(unknown)", s.TouchServer(ctx, "ps-x", t0), wharf.ErrNotFound)

	contact := func() time.Time {
		t.Helper()
		srv, err := s.Server(ctx, "ps-a")
		if err != nil {
			t.Fatal(err)
		}
		return srv.LastContact
	}
	at := t0.Add(time.Minute)
	if err := s.TouchServer(ctx, "ps-a", at); err != nil {
		t.Fatalf("TouchServer: %v", err)
	}
	if got := contact(); !reflect.DeepEqual(got, norm(at)) {
		t.Errorf("LastContact = %v, want %v", got, norm(at))
	}
	later := at.Add(time.Second)
	if err := s.TouchServer(ctx, "ps-a", later); err != nil {
		t.Fatal(err)
	}
	if err := s.TouchServer(ctx, "ps-a", at); err != nil {
		t.Errorf("TouchServer(older time): %v", err)
	}
	if got := contact(); !reflect.DeepEqual(got, norm(later)) {
		t.Errorf("LastContact after an older touch = %v, want it to stay %v", got, norm(later))
	}
	list, err := s.ListServers(ctx)
	if err != nil || len(list) != 1 || !list[0].LastContact.Equal(norm(later)) {
		t.Errorf("ListServers = %+v, %v; want ps-a last contacted %v", list, err, norm(later))
	}
}

func testPackageStates(t *testing.T, s *sqlstore.Store) {
	ctx := context.Background()
	p1 := newPackage("one", "1", t0)
	p2 := newPackage("two", "1", t0)
	mustCreate(t, s, p1, p2)
	if got, err := s.PackageStates(ctx, catalog.StateFilter{}); err != nil || len(got) != 0 {
		t.Errorf("PackageStates(empty) = %v, %v", got, err)
	}
	if err := s.PutPackageStates(ctx, nil); err != nil {
		t.Errorf("PutPackageStates(nil): %v", err)
	}

	ghost := wharf.NewPackageID()
	put := []catalog.PackageState{
		{Server: "ps-b", PackageID: p1.ID, State: "downloading", UpdatedAt: t0},
		{Server: "ps-a", PackageID: p2.ID, State: "failed", Reason: "disk full", UpdatedAt: t0},
		{Server: "ps-a", PackageID: ghost, State: "ready", UpdatedAt: t0}, // dropped
		{Server: "ps-a", PackageID: p1.ID, State: "ready", Path: `C:\Wharf\one`, UpdatedAt: t0},
	}
	if err := s.PutPackageStates(ctx, put); err != nil {
		t.Fatalf("PutPackageStates: %v", err)
	}
	st := func(server wharf.ServerName, id wharf.PackageID, state, reason, path string, at time.Time) catalog.PackageState {
		return catalog.PackageState{Server: server, PackageID: id, State: state, Reason: reason, Path: path, UpdatedAt: norm(at)}
	}
	a1 := st("ps-a", p1.ID, "ready", "", `C:\Wharf\one`, t0)
	a2 := st("ps-a", p2.ID, "failed", "disk full", "", t0)
	b1 := st("ps-b", p1.ID, "downloading", "", "", t0)
	// Within a server, states sort by package id.
	aStates := []catalog.PackageState{a1, a2}
	if p2.ID < p1.ID {
		aStates = []catalog.PackageState{a2, a1}
	}
	check := func(f catalog.StateFilter, want []catalog.PackageState) {
		t.Helper()
		got, err := s.PackageStates(ctx, f)
		if err != nil {
			t.Errorf("PackageStates(%+v): %v", f, err)
			return
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("PackageStates(%+v):\n got %+v\nwant %+v", f, got, want)
		}
	}
	check(catalog.StateFilter{}, append(append([]catalog.PackageState(nil), aStates...), b1))
	check(catalog.StateFilter{Server: "ps-a"}, aStates)
	check(catalog.StateFilter{PackageID: p1.ID}, []catalog.PackageState{a1, b1})
	check(catalog.StateFilter{Server: "ps-b", PackageID: p1.ID}, []catalog.PackageState{b1})
	check(catalog.StateFilter{Server: "ps-b", PackageID: p2.ID}, nil)
	check(catalog.StateFilter{PackageID: ghost}, nil)
	// Pages, in SQL.
	check(catalog.StateFilter{Server: "ps-a", Limit: 1}, aStates[:1])
	check(catalog.StateFilter{Server: "ps-a", Offset: 1, Limit: 5}, aStates[1:])
	check(catalog.StateFilter{Offset: 2, Limit: 5}, []catalog.PackageState{b1})
	for _, tt := range []struct {
		f    catalog.StateFilter
		want map[string]int
	}{
		{catalog.StateFilter{}, map[string]int{"ready": 1, "failed": 1, "downloading": 1}},
		{catalog.StateFilter{Server: "ps-a", Limit: 1}, map[string]int{"ready": 1, "failed": 1}},
		{catalog.StateFilter{Server: "ps-z"}, map[string]int{}},
	} {
		if got, err := s.CountStates(ctx, tt.f); err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("CountStates(%+v) = %v, %v; want %v", tt.f, got, err, tt.want)
		}
	}

	// Overwrite: the later of two states with one key in a call wins.
	later := t0.Add(time.Minute)
	err := s.PutPackageStates(ctx, []catalog.PackageState{
		{Server: "ps-b", PackageID: p1.ID, State: "failed", Reason: "first", UpdatedAt: later},
		{Server: "ps-b", PackageID: p1.ID, State: "ready", Path: "/srv/one", UpdatedAt: later},
	})
	if err != nil {
		t.Fatalf("PutPackageStates(overwrite): %v", err)
	}
	check(catalog.StateFilter{Server: "ps-b"}, []catalog.PackageState{st("ps-b", p1.ID, "ready", "", "/srv/one", later)})

	// Only unknown packages: nothing stored, no error.
	if err := s.PutPackageStates(ctx, []catalog.PackageState{{Server: "ps-c", PackageID: ghost, State: "ready", UpdatedAt: t0}}); err != nil {
		t.Errorf("PutPackageStates(unknown package only): %v", err)
	}
	check(catalog.StateFilter{Server: "ps-c"}, nil)

	// Many states in one call.
	var many []catalog.PackageState
	for i := range 450 {
		many = append(many, catalog.PackageState{Server: wharf.ServerName(fmt.Sprintf("ps-%03d", i)), PackageID: p2.ID, State: "ready", UpdatedAt: t0})
	}
	if err := s.PutPackageStates(ctx, many); err != nil {
		t.Fatalf("PutPackageStates(450 states): %v", err)
	}
	if got, err := s.PackageStates(ctx, catalog.StateFilter{PackageID: p2.ID}); err != nil || len(got) != 451 {
		t.Errorf("PackageStates(p2) = %d states, %v; want 451", len(got), err)
	}
}

func testTimes(t *testing.T, s *sqlstore.Store) {
	ctx := context.Background()
	times := []time.Time{
		t0,
		time.Date(1999, 12, 31, 23, 59, 59, 999999999, time.UTC),
		time.Date(2038, 1, 19, 3, 14, 8, 1000, time.FixedZone("", -7*3600-1800)),
		time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC),
		time.Now(), // with a monotonic reading
	}
	for i, tm := range times {
		p := newPackage(fmt.Sprint("times-", i), "1", tm)
		mustCreate(t, s, p)
		got := mustPackage(t, s, p.ID).CreatedAt
		if !reflect.DeepEqual(got, norm(tm)) || got.Location() != time.UTC {
			t.Errorf("CreatedAt %v came back as %v (%v), want %v", tm, got, got.Location(), norm(tm))
		}
		srv := newServer(wharf.ServerName(fmt.Sprint("ps-", i)))
		srv.EnrolledAt, srv.LastContact = tm, tm.Add(time.Nanosecond)
		if err := s.CreateServer(ctx, srv); err != nil {
			t.Fatal(err)
		}
		gotSrv, err := s.Server(ctx, srv.Name)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(gotSrv, wantServer(srv)) {
			t.Errorf("server times:\n got %v, %v\nwant %v, %v", gotSrv.EnrolledAt, gotSrv.LastContact, norm(srv.EnrolledAt), norm(srv.LastContact))
		}
	}
}

// testConcurrentWrites runs writers that collide, to show the store
// serializes them without failing (SQLite's busy timeout, PostgreSQL's
// row locks).
func testConcurrentWrites(t *testing.T, s *sqlstore.Store) {
	ctx := context.Background()
	var wg sync.WaitGroup
	var mu sync.Mutex
	created := 0
	for i := range 8 {
		wg.Go(func() {
			err := s.CreatePackage(ctx, newPackage("contended", "1.0", t0.Add(time.Duration(i))))
			switch {
			case err == nil:
				mu.Lock()
				created++
				mu.Unlock()
			case !errors.Is(err, wharf.ErrExists):
				t.Errorf("CreatePackage(contended): %v", err)
			}
		})
	}
	wg.Wait()
	if created != 1 {
		t.Errorf("%d racing creates of one name and version succeeded, want 1", created)
	}

	// States reported while packages are deleted: every call succeeds, and
	// no state outlives its package.
	var pkgs []catalog.Package
	for i := range 20 {
		p := newPackage(fmt.Sprint("p", i), "1", t0)
		pkgs = append(pkgs, p)
		mustCreate(t, s, p)
	}
	for w := range 4 {
		wg.Go(func() {
			for _, p := range pkgs {
				err := s.PutPackageStates(ctx, []catalog.PackageState{
					{Server: wharf.ServerName(fmt.Sprint("ps-", w)), PackageID: p.ID, State: "ready", UpdatedAt: t0},
				})
				if err != nil {
					t.Errorf("PutPackageStates: %v", err)
				}
				if _, err := s.ListPackages(ctx, catalog.PackageFilter{AssignedTo: "ps-a"}); err != nil {
					t.Errorf("ListPackages: %v", err)
				}
			}
		})
	}
	wg.Go(func() {
		for _, p := range pkgs[:10] {
			if err := s.DeletePackage(ctx, p.ID); err != nil {
				t.Errorf("DeletePackage: %v", err)
			}
		}
	})
	wg.Wait()
	states, err := s.PackageStates(ctx, catalog.StateFilter{})
	if err != nil {
		t.Fatal(err)
	}
	deleted := make(map[wharf.PackageID]bool)
	for _, p := range pkgs[:10] {
		deleted[p.ID] = true
	}
	for _, st := range states {
		if deleted[st.PackageID] {
			t.Errorf("state %+v outlived its deleted package", st)
		}
	}
	if want := 4 * 10; len(states) != want {
		t.Errorf("%d states, want %d (4 servers × 10 remaining packages)", len(states), want)
	}
}

// TestSQLiteReopen closes and reopens a SQLite store: migrations run again
// without harm and the data is still there.
func TestSQLiteReopen(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := sqlstore.Open(ctx, "", dir)
	if err != nil {
		t.Fatal(err)
	}
	p := newPackage("kept", "1.0", t0, "ps-a")
	mustCreate(t, s, p)
	if _, err := s.InitSetting(ctx, "k", "v"); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	for _, dsn := range []string{"", "sqlite:", "sqlite:" + filepath.Join(dir, "wharf.db"), filepath.Join(dir, "wharf.db")} {
		s := open(t, dsn, dir)
		if got := mustPackage(t, s, p.ID); !reflect.DeepEqual(got, stored(p)) {
			t.Errorf("reopened with %q: package\n got %+v\nwant %+v", dsn, got, stored(p))
		}
		if v, err := s.Setting(ctx, "k"); err != nil || v != "v" {
			t.Errorf("reopened with %q: Setting(k) = %q, %v", dsn, v, err)
		}
		if got := s.Dialect(); got != "sqlite" {
			t.Errorf("Dialect() = %q, want sqlite", got)
		}
	}
}

// TestPostgresReopen opens the same PostgreSQL database twice at once, as
// two NS processes would.
func TestPostgresReopen(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.DSN(t)
	var wg sync.WaitGroup
	stores := make([]*sqlstore.Store, 3)
	for i := range stores {
		wg.Go(func() {
			s, err := sqlstore.Open(ctx, dsn, "")
			if err != nil {
				t.Errorf("open %d: %v", i, err)
				return
			}
			stores[i] = s
		})
	}
	wg.Wait()
	for _, s := range stores {
		if s != nil {
			t.Cleanup(func() { s.Close() })
		}
	}
	if t.Failed() {
		return
	}
	p := newPackage("shared", "1.0", t0)
	mustCreate(t, stores[0], p)
	if got := mustPackage(t, stores[1], p.ID); !reflect.DeepEqual(got, stored(p)) {
		t.Errorf("package via the second store:\n got %+v\nwant %+v", got, stored(p))
	}
	if got := stores[2].Dialect(); got != "postgres" {
		t.Errorf("Dialect() = %q, want postgres", got)
	}
}

func TestOpenErrors(t *testing.T) {
	ctx := context.Background()
	for _, tt := range []struct{ dsn, dataDir string }{
		{"mysql://root@localhost/wharf", t.TempDir()},
		{"", ""},
		{"sqlite:" + filepath.Join(t.TempDir(), "what?.db"), ""},
	} {
		if s, err := sqlstore.Open(ctx, tt.dsn, tt.dataDir); err == nil {
			s.Close()
			t.Errorf("Open(%q, %q) succeeded, want an error", tt.dsn, tt.dataDir)
		}
	}
}

func testPolicies(t *testing.T, s *sqlstore.Store) {
	ctx := context.Background()
	at := time.Date(2026, 11, 24, 10, 0, 0, 123456000, time.UTC)
	if _, err := s.Policy(ctx, "", "package-server"); !errors.Is(err, wharf.ErrNotFound) {
		t.Fatalf("missing policy: %v, want ErrNotFound", err)
	}
	r, err := s.PutPolicy(ctx, "", "package-server", `{"a":1}`, 0, at)
	if err != nil || r.Version != 1 {
		t.Fatalf("first put: %+v %v", r, err)
	}
	if _, err := s.PutPolicy(ctx, "", "package-server", `{"a":2}`, 0, at); !errors.Is(err, wharf.ErrConflict) {
		t.Fatalf("second create: %v, want ErrConflict", err)
	}
	if _, err := s.PutPolicy(ctx, "", "package-server", `{"a":2}`, 5, at); !errors.Is(err, wharf.ErrConflict) {
		t.Fatalf("stale version: %v, want ErrConflict", err)
	}
	if r, err = s.PutPolicy(ctx, "", "package-server", `{"a":3}`, 1, at.Add(time.Second)); err != nil || r.Version != 2 {
		t.Fatalf("update: %+v %v", r, err)
	}
	got, err := s.Policy(ctx, "", "package-server")
	if err != nil || got.Data != `{"a":3}` || got.Version != 2 || !got.UpdatedAt.Equal(at.Add(time.Second)) {
		t.Fatalf("read back: %+v %v", got, err)
	}
	if _, err := s.PutPolicy(ctx, "ps-a", "package-server", `{"b":1}`, 0, at); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Policy(ctx, "", "package-server"); got.Data != `{"a":3}` {
		t.Fatalf("an override changed the global policy: %+v", got)
	}
	if err := s.DeletePolicy(ctx, "ps-a", "package-server"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeletePolicy(ctx, "ps-a", "package-server"); !errors.Is(err, wharf.ErrNotFound) {
		t.Fatalf("second delete: %v, want ErrNotFound", err)
	}
	// Racing updates from one version: exactly one wins.
	var wins atomic.Int32
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := s.PutPolicy(ctx, "", "package-server", fmt.Sprintf(`{"i":%d}`, i), 2, at); err == nil {
				wins.Add(1)
			}
		}()
	}
	wg.Wait()
	if wins.Load() != 1 {
		t.Fatalf("%d racing updates won, want 1", wins.Load())
	}
}

func testLocationsAlertsTasks(t *testing.T, s *sqlstore.Store) {
	ctx := context.Background()
	t0 := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	if _, err := s.LatestLocationEvent(ctx, "ps-a"); !errors.Is(err, wharf.ErrNotFound) {
		t.Fatalf("latest of nothing: %v", err)
	}
	for i, hist := range []bool{true, false, true} {
		if err := s.PutLocationEvent(ctx, "ps-a", t0.Add(time.Duration(i)*time.Second), fmt.Sprintf(`{"n":%d}`, i), hist); err != nil {
			t.Fatal(err)
		}
	}
	if e, err := s.LatestLocationEvent(ctx, "ps-a"); err != nil || e.Data != `{"n":2}` || !e.ReceivedAt.Equal(t0.Add(2*time.Second)) {
		t.Fatalf("latest: %+v %v", e, err)
	}
	h, err := s.LocationHistory(ctx, "ps-a", 10)
	if err != nil || len(h) != 2 || h[0].Data != `{"n":2}` || h[1].Data != `{"n":0}` {
		t.Fatalf("history: %+v %v", h, err)
	}
	if h, _ := s.LocationHistory(ctx, "ps-a", 1); len(h) != 1 {
		t.Fatalf("history limit: %d", len(h))
	}
	if h, _ := s.LocationHistory(ctx, "ps-b", 10); len(h) != 0 {
		t.Fatalf("history of another server: %d", len(h))
	}

	for i, id := range []string{"a1", "a2"} {
		if _, err := s.RaiseAlert(ctx, catalog.Alert{ID: id, Server: "ps-a", Level: "info", Message: "m" + id, Fingerprint: "f" + id,
			CreatedAt: t0.Add(time.Duration(i) * time.Minute)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.MarkAlertRead(ctx, "a1", t0); err != nil {
		t.Fatal(err)
	}
	if err := s.MarkAlertRead(ctx, "nope", t0); !errors.Is(err, wharf.ErrNotFound) {
		t.Fatalf("mark unknown alert: %v", err)
	}
	all, _ := s.ListAlerts(ctx, false, 10)
	unread, _ := s.ListAlerts(ctx, true, 10)
	if len(all) != 2 || all[0].ID != "a2" || !all[1].ReadAt.Equal(t0) || len(unread) != 1 || unread[0].ID != "a2" || unread[0].Count != 1 {
		t.Fatalf("alerts: all %+v unread %+v", all, unread)
	}
	// A repeat of an unread alert counts; of a read one, is a new alert.
	for i := range 2 {
		a, err := s.RaiseAlert(ctx, catalog.Alert{ID: fmt.Sprintf("r%d", i), Server: "ps-a", Level: "info", Message: "ma2", Fingerprint: "fa2",
			CreatedAt: t0.Add(time.Duration(5+i) * time.Minute)})
		if err != nil || a.ID != "a2" || a.Count != 2+i || !a.LastSeenAt.Equal(t0.Add(time.Duration(5+i)*time.Minute)) || !a.CreatedAt.Equal(t0.Add(time.Minute)) {
			t.Fatalf("repeat %d of a2: %+v %v", i, a, err)
		}
	}
	a, err := s.RaiseAlert(ctx, catalog.Alert{ID: "a1b", Server: "ps-a", Level: "info", Message: "ma1", Fingerprint: "fa1", CreatedAt: t0.Add(9 * time.Minute)})
	if err != nil || a.ID != "a1b" || a.Count != 1 {
		t.Fatalf("repeat of the read a1: %+v %v", a, err)
	}
	if all, _ := s.ListAlerts(ctx, false, 10); len(all) != 3 || all[0].ID != "a1b" || all[1].ID != "a2" || all[1].Count != 3 {
		t.Fatalf("alerts after repeats, last seen first: %+v", all)
	}
	if n, err := s.CountUnreadAlerts(ctx); err != nil || n["info"] != 2 || len(n) != 1 {
		t.Fatalf("unread alerts by level: %v %v", n, err)
	}
	if n, err := s.MarkAllAlertsRead(ctx, t0.Add(time.Hour)); err != nil || n != 2 {
		t.Fatalf("mark all read: %d %v", n, err)
	}
	if unread, _ := s.ListAlerts(ctx, true, 10); len(unread) != 0 {
		t.Fatalf("unread after marking all read: %+v", unread)
	}
	if all, _ := s.ListAlerts(ctx, false, 10); !all[2].ReadAt.Equal(t0) {
		t.Fatalf("marking all read moved the time a1 was read: %+v", all[2])
	}

	for i, id := range []string{"t1", "t2"} {
		if err := s.CreateTask(ctx, catalog.Task{ID: id, Server: "ps-a", Type: "retry-relocation", Args: "{}", CreatedAt: t0.Add(time.Duration(i) * time.Second)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.CompleteTask(ctx, "ps-b", "t1", `{}`, t0); !errors.Is(err, wharf.ErrNotFound) {
		t.Fatalf("another server completing t1: %v", err)
	}
	if err := s.CompleteTask(ctx, "ps-a", "t1", `{"error":"x"}`, t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := s.CompleteTask(ctx, "ps-a", "t1", `{}`, t0); !errors.Is(err, wharf.ErrNotFound) {
		t.Fatalf("completing twice: %v", err)
	}
	p, err := s.PendingTasks(ctx, "ps-a")
	if err != nil || len(p) != 1 || p[0].ID != "t2" {
		t.Fatalf("pending: %+v %v", p, err)
	}
	if tk, err := s.Task(ctx, "ps-a", "t1"); err != nil || tk.Result != `{"error":"x"}` || !tk.DoneAt.Equal(t0.Add(time.Minute)) {
		t.Fatalf("task t1: %+v %v", tk, err)
	}
	if _, err := s.Task(ctx, "ps-b", "t1"); !errors.Is(err, wharf.ErrNotFound) {
		t.Fatalf("task of another server: %v", err)
	}
}

// testFleetReads checks the bulk reads and the batched write the catalog's
// in-memory fleet uses.
func testFleetReads(t *testing.T, s *sqlstore.Store) {
	ctx := context.Background()
	for _, n := range []wharf.ServerName{"ps-a", "ps-b", "ps-c"} {
		if err := s.CreateServer(ctx, newServer(n)); err != nil {
			t.Fatal(err)
		}
	}
	at := t0.Add(time.Hour)
	if err := s.TouchServer(ctx, "ps-c", at.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	err := s.TouchServers(ctx, map[wharf.ServerName]time.Time{"ps-a": at, "ps-b": at.Add(time.Second), "ps-c": at, "ps-gone": at})
	if err != nil {
		t.Fatalf("TouchServers: %v", err)
	}
	list, err := s.ListServers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := map[wharf.ServerName]time.Time{"ps-a": norm(at), "ps-b": norm(at.Add(time.Second)), "ps-c": norm(at.Add(time.Minute))}
	for _, srv := range list {
		if !srv.LastContact.Equal(want[srv.Name]) {
			t.Errorf("%s: LastContact = %v, want %v (an older contact never goes back)", srv.Name, srv.LastContact, want[srv.Name])
		}
	}
	if err := s.TouchServers(ctx, nil); err != nil {
		t.Errorf("TouchServers(none): %v", err)
	}

	for _, p := range []struct {
		server wharf.ServerName
		kind   string
	}{{"ps-b", "site-server"}, {"", "package-server"}, {"ps-a", "package-server"}, {"", "site-server"}} {
		if _, err := s.PutPolicy(ctx, p.server, p.kind, `{}`, 0, t0); err != nil {
			t.Fatal(err)
		}
	}
	pols, err := s.ListPolicies(ctx)
	if err != nil {
		t.Fatalf("ListPolicies: %v", err)
	}
	var got []string
	for _, p := range pols {
		got = append(got, string(p.Server)+"/"+p.Kind)
	}
	if w := []string{"/package-server", "/site-server", "ps-a/package-server", "ps-b/site-server"}; !reflect.DeepEqual(got, w) {
		t.Errorf("ListPolicies = %q, want %q", got, w)
	}

	tasks := []catalog.Task{
		{ID: "t1", Server: "ps-b", Type: "retry-relocation", Args: "{}", CreatedAt: t0},
		{ID: "t2", Server: "ps-a", Type: "retry-relocation", Args: "{}", CreatedAt: t0.Add(time.Second)},
		{ID: "t3", Server: "ps-a", Type: "retry-relocation", Args: "{}", CreatedAt: t0},
		{ID: "t4", Server: "ps-c", Type: "retry-relocation", Args: "{}", CreatedAt: t0},
	}
	for _, tk := range tasks {
		if err := s.CreateTask(ctx, tk); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.CompleteTask(ctx, "ps-c", "t4", `{}`, t0); err != nil {
		t.Fatal(err)
	}
	pending, err := s.PendingTasks(ctx, "")
	if err != nil {
		t.Fatalf("PendingTasks(all): %v", err)
	}
	got = nil
	for _, tk := range pending {
		got = append(got, string(tk.Server)+"/"+tk.ID)
	}
	if w := []string{"ps-a/t3", "ps-a/t2", "ps-b/t1"}; !reflect.DeepEqual(got, w) {
		t.Errorf("PendingTasks(\"\") = %q, want %q (by server, oldest first, done ones left out)", got, w)
	}
}

func testLockBlobs(t *testing.T, s *sqlstore.Store) {
	ctx := context.Background()
	unlock, err := s.LockBlobs(ctx)
	if err != nil {
		t.Fatalf("LockBlobs: %v", err)
	}
	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	if u, err := s.LockBlobs(short); err == nil {
		u()
		t.Fatal("a second LockBlobs got the lock while the first held it")
	}
	unlock()
	unlock2, err := s.LockBlobs(ctx)
	if err != nil {
		t.Fatalf("LockBlobs after unlock: %v", err)
	}
	unlock2()
}

func testConsoleSessions(t *testing.T, s *sqlstore.Store) {
	ctx := context.Background()
	cs := catalog.ConsoleSession{Key: "k1", User: "alice", PasswordHash: "$2a$x", CSRF: "c", Created: t0, Seen: t0}
	if err := s.CreateSession(ctx, cs); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateSession(ctx, catalog.ConsoleSession{Key: "k2", User: "admin", ByToken: true, CSRF: "d", Created: t0.Add(-time.Hour), Seen: t0}); err != nil {
		t.Fatal(err)
	}
	got, err := s.Session(ctx, "k1")
	cs.Created, cs.Seen = norm(t0), norm(t0)
	if err != nil || !reflect.DeepEqual(got, cs) {
		t.Fatalf("Session = %+v, %v; want %+v", got, err, cs)
	}
	if _, err := s.Session(ctx, "nope"); !errors.Is(err, wharf.ErrNotFound) {
		t.Errorf("Session(unknown) = %v, want ErrNotFound", err)
	}
	if err := s.TouchSession(ctx, "k1", t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	add := func(cur string) string { return cur + "x" }
	for i := 0; i < 2; i++ {
		if err := s.UpdateSessionFlashes(ctx, "k1", add); err != nil {
			t.Fatal(err)
		}
	}
	if got, _ := s.Session(ctx, "k1"); got.Flashes != "xx" || !got.Seen.Equal(norm(t0.Add(time.Minute))) {
		t.Errorf("after touch and flashes: %+v", got)
	}
	if err := s.UpdateSessionFlashes(ctx, "nope", add); !errors.Is(err, wharf.ErrNotFound) {
		t.Errorf("flashes of an unknown session: %v, want ErrNotFound", err)
	}
	// k2 was created an hour before t0: too old for a 30-minute maximum.
	if err := s.DeleteExpiredSessions(ctx, t0.Add(-time.Hour), t0.Add(-30*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Session(ctx, "k2"); !errors.Is(err, wharf.ErrNotFound) {
		t.Errorf("an expired session is still there: %v", err)
	}
	if err := s.DeleteSession(ctx, "k1"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Session(ctx, "k1"); !errors.Is(err, wharf.ErrNotFound) {
		t.Errorf("a deleted session is still there: %v", err)
	}
}

func testLoginBuckets(t *testing.T, s *sqlstore.Store) {
	ctx := context.Background()
	for i := 0; i < 3; i++ {
		if ok, _, err := s.TakeLoginToken(ctx, "10.0.0.1", 3, time.Minute, t0); err != nil || !ok {
			t.Fatalf("attempt %d of a burst of 3: %v, %v", i+1, ok, err)
		}
	}
	ok, wait, err := s.TakeLoginToken(ctx, "10.0.0.1", 3, time.Minute, t0.Add(30*time.Second))
	if err != nil || ok || wait < 29*time.Second || wait > 30*time.Second {
		t.Fatalf("4th attempt: ok %v wait %v err %v; want refused, 30s to wait", ok, wait, err)
	}
	if ok, _, _ := s.TakeLoginToken(ctx, "10.0.0.2", 3, time.Minute, t0); !ok {
		t.Error("another client is limited by the first one's attempts")
	}
	if ok, _, err := s.TakeLoginToken(ctx, "10.0.0.1", 3, time.Minute, t0.Add(time.Minute)); err != nil || !ok {
		t.Errorf("after a minute: %v, %v; want one more attempt", ok, err)
	}
}

func testHealth(t *testing.T, s *sqlstore.Store) {
	ctx := context.Background()
	t0 := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	if _, err := s.Health(ctx, "ps-a"); !errors.Is(err, wharf.ErrNotFound) {
		t.Fatalf("health of nothing: %v", err)
	}
	for i, srv := range []wharf.ServerName{"ps-b", "ps-a", "ps-a"} {
		if err := s.PutHealth(ctx, srv, t0.Add(time.Duration(i)*time.Minute), fmt.Sprintf(`{"n":%d}`, i)); err != nil {
			t.Fatal(err)
		}
	}
	if h, err := s.Health(ctx, "ps-a"); err != nil || h.Data != `{"n":2}` || !h.ReceivedAt.Equal(t0.Add(2*time.Minute)) {
		t.Fatalf("health: %+v %v", h, err)
	}
	if list, err := s.ListHealth(ctx); err != nil || len(list) != 2 || list[0].Server != "ps-a" || list[1].Data != `{"n":0}` {
		t.Fatalf("list health: %+v %v", list, err)
	}
	sample := func(vol string, h int, free int64) catalog.VolumeSample {
		return catalog.VolumeSample{Volume: vol, At: t0.Add(time.Duration(h) * time.Hour), TotalMB: 1000, FreeMB: free, UsedMB: 10, ReserveMB: 50}
	}
	var batch []catalog.VolumeSample
	for h := range 10 {
		batch = append(batch, sample("/data", h, int64(900-h)), sample("/other", h, 5))
	}
	if err := s.AddVolumeSamples(ctx, "ps-a", batch, t0); err != nil {
		t.Fatal(err)
	}
	// The same time again replaces; samples older than before go.
	if err := s.AddVolumeSamples(ctx, "ps-a", []catalog.VolumeSample{sample("/data", 9, 1)}, t0.Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	got, err := s.VolumeSamples(ctx, "ps-a", "/data", t0, 100)
	if err != nil || len(got) != 8 || !got[0].At.Equal(t0.Add(2*time.Hour)) || got[7].FreeMB != 1 || got[0].ReserveMB != 50 {
		t.Fatalf("samples after a replace and a prune: %+v %v", got, err)
	}
	got, _ = s.VolumeSamples(ctx, "ps-a", "/data", t0.Add(5*time.Hour), 3)
	if len(got) != 3 || !got[0].At.Equal(t0.Add(7*time.Hour)) || !got[2].At.Equal(t0.Add(9*time.Hour)) {
		t.Fatalf("the newest 3 since hour 5, oldest first: %+v", got)
	}
	if got, _ := s.VolumeSamples(ctx, "ps-b", "/data", t0, 100); len(got) != 0 {
		t.Fatalf("another server's samples: %+v", got)
	}
}
