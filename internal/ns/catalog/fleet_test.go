package catalog_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/wharf-project/wharf/internal/api"
	"github.com/wharf-project/wharf/internal/ns/catalog"
	"github.com/wharf-project/wharf/internal/ns/notify"
	"github.com/wharf-project/wharf/internal/ns/sqlstore"
	"github.com/wharf-project/wharf/internal/wharf"
)

// blobsOK says every blob is there with the size asked.
type blobsOK struct{}

func (blobsOK) Size(wharf.Digest) (int64, error) { return 3, nil }
func (blobsOK) Delete(wharf.Digest) error        { return nil }

type env struct {
	t     *testing.T
	ctx   context.Context
	store *sqlstore.Store
	bus   *notify.Local
}

func newEnv(t *testing.T) *env {
	st, err := sqlstore.Open(context.Background(), "", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	return &env{t: t, ctx: ctx, store: st, bus: notify.NewLocal()}
}

// catalog returns a new catalog on the shared store and bus, serving.
func (e *env) catalog() *catalog.Catalog {
	c := catalog.New(e.store, blobsOK{}, e.bus, time.Now, slog.New(slog.NewTextHandler(io.Discard, nil)))
	go c.Serve(e.ctx)
	return c
}

func (e *env) enroll(c *catalog.Catalog, name, os string) (catalog.Server, string) {
	e.t.Helper()
	tok, err := c.MintEnrollToken(e.ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	en, err := c.Enroll(e.ctx, api.EnrollRequest{Token: tok.Token, Name: name, OS: os, URL: "http://" + name + ":8081"})
	if err != nil {
		e.t.Fatal(err)
	}
	s, err := c.AuthenticateServer(e.ctx, en.Credential)
	if err != nil {
		e.t.Fatal(err)
	}
	return s, en.Credential
}

type answer struct {
	etag    string
	changed bool
	err     error
}

// poll starts a long poll with the server's current ETag and returns once
// the catalog counts it waiting.
func (e *env) poll(c *catalog.Catalog, s catalog.Server) <-chan answer {
	return e.pollCtx(e.ctx, c, s)
}

func (e *env) pollCtx(ctx context.Context, c *catalog.Catalog, s catalog.Server) <-chan answer {
	e.t.Helper()
	_, etag, _, err := c.WaitConfig(e.ctx, s, "", 0)
	if err != nil {
		e.t.Fatal(err)
	}
	before := c.PollsWaiting()
	ch := make(chan answer, 1)
	go func() {
		_, tag, changed, err := c.WaitConfig(ctx, s, etag, time.Minute)
		ch <- answer{tag, changed, err}
	}()
	deadline := time.Now().Add(10 * time.Second)
	for c.PollsWaiting() <= before {
		if time.Now().After(deadline) {
			e.t.Fatalf("the poll of %s is not waiting after 10 s", s.Name)
		}
		time.Sleep(time.Millisecond)
	}
	return ch
}

func woken(ch <-chan answer) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

func TestChangesWakeOnlyThePollsTheyConcern(t *testing.T) {
	e := newEnv(t)
	c := e.catalog()
	servers := map[string]catalog.Server{}
	for _, n := range []string{"ps-1", "ps-2", "ps-3"} {
		servers[n], _ = e.enroll(c, n, "linux")
	}
	ctx := e.ctx
	tests := []struct {
		name   string
		change func() error
		wakes  []string
	}{
		{"an enrollment", func() error { _, _ = e.enroll(c, "ps-4", "linux"); return nil }, nil},
		{"a task", func() error {
			_, err := c.CreateTask(ctx, "ps-2", api.TaskRequest{Type: api.TaskRetryRelocation})
			return err
		}, []string{"ps-2"}},
		{"an override", func() error {
			_, err := c.SetPackageServerPolicy(ctx, "ps-3", api.PackageServerSettings{LinuxLocation: ptr("/srv/ps3")})
			return err
		}, []string{"ps-3"}},
		{"a package for one server", func() error {
			_, _, err := c.CreatePackage(ctx, manifest("for-1", api.Assignment{Servers: []string{"ps-1"}}))
			return err
		}, []string{"ps-1"}},
		{"a global policy", func() error {
			_, err := c.SetSiteServerPolicy(ctx, "", api.SiteServerSettings{DownloadConcurrency: ptr(9)})
			return err
		}, []string{"ps-1", "ps-2", "ps-3"}},
		{"a global policy that changes nothing", func() error {
			_, err := c.SetSiteServerPolicy(ctx, "", api.SiteServerSettings{DownloadConcurrency: ptr(9)})
			return err
		}, nil},
		{"a package for all", func() error {
			_, _, err := c.CreatePackage(ctx, manifest("for-all", api.Assignment{All: true}))
			return err
		}, []string{"ps-1", "ps-2", "ps-3"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pctx, cancel := context.WithCancel(ctx)
			polls := map[string]<-chan answer{}
			for _, n := range []string{"ps-1", "ps-2", "ps-3"} {
				polls[n] = e.pollCtx(pctx, c, servers[n])
			}
			loads := c.PollStats().Loads
			wakesBefore := c.PollStats().Wakes
			if err := tt.change(); err != nil {
				t.Fatal(err)
			}
			for _, n := range tt.wakes {
				select {
				case a := <-polls[n]:
					if !a.changed || a.err != nil {
						t.Errorf("%s: answer %+v, want a new configuration", n, a)
					}
					delete(polls, n)
				case <-time.After(5 * time.Second):
					t.Fatalf("%s not woken by %s", n, tt.name)
				}
			}
			for n, ch := range polls {
				if woken(ch) {
					t.Errorf("%s woken by %s, which does not concern it", n, tt.name)
					delete(polls, n)
				}
			}
			if got, want := c.PollStats().Wakes-wakesBefore, int64(len(tt.wakes)); got != want {
				t.Errorf("%d polls woken, want %d", got, want)
			}
			if c.PollStats().Loads-loads > 1 {
				t.Errorf("%d store reads for one change, want at most 1", c.PollStats().Loads-loads)
			}
			// End the polls left waiting: they belong to this case.
			cancel()
			for _, ch := range polls {
				<-ch
			}
		})
	}
}

func TestPollsAtRestReadNothing(t *testing.T) {
	e := newEnv(t)
	c := e.catalog()
	s, cred := e.enroll(c, "ps-1", "linux")
	_, etag, _, err := c.WaitConfig(e.ctx, s, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	loads := c.PollStats().Loads
	for i := 0; i < 100; i++ {
		if _, err := c.AuthenticateServer(e.ctx, cred); err != nil {
			t.Fatal(err)
		}
		if _, _, changed, err := c.WaitConfig(e.ctx, s, etag, 0); err != nil || changed {
			t.Fatalf("poll %d: changed %v, %v", i, changed, err)
		}
	}
	if got := c.PollStats().Loads - loads; got != 0 {
		t.Fatalf("100 polls at rest made %d store reads, want 0", got)
	}
}

func TestAChangeThroughOneCatalogReachesAnother(t *testing.T) {
	e := newEnv(t)
	a, b := e.catalog(), e.catalog()
	s, cred := e.enroll(a, "ps-1", "linux")
	if _, err := b.AuthenticateServer(e.ctx, cred); err != nil {
		t.Fatalf("a server enrolled through A is refused by B: %v", err)
	}
	poll := e.poll(b, s)
	if _, err := a.SetPackageServerPolicy(e.ctx, "", api.PackageServerSettings{LinuxLocation: ptr("/srv/new")}); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-poll:
		if !r.changed {
			t.Fatalf("B's poll: %+v, want a new configuration", r)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a policy changed through A did not wake the poll held by B")
	}
}

func TestARemovedServerIsRefusedAtOnce(t *testing.T) {
	e := newEnv(t)
	a, b := e.catalog(), e.catalog()
	s, cred := e.enroll(a, "ps-1", "linux")
	for _, c := range []*catalog.Catalog{a, b} {
		if _, err := c.AuthenticateServer(e.ctx, cred); err != nil {
			t.Fatal(err)
		}
	}
	poll := e.poll(b, s)
	if err := a.RemoveServer(e.ctx, "ps-1"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(time.Second)
	for name, c := range map[string]*catalog.Catalog{"A": a, "B": b} {
		for {
			_, err := c.AuthenticateServer(e.ctx, cred)
			if errors.Is(err, wharf.ErrUnauthorized) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: the credential of a removed server after a second: %v, want ErrUnauthorized", name, err)
			}
			time.Sleep(time.Millisecond)
		}
	}
	select {
	case r := <-poll:
		if !errors.Is(r.err, wharf.ErrUnauthorized) {
			t.Fatalf("the poll of a removed server ended with %+v, want ErrUnauthorized", r)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the poll of a removed server still waits")
	}
	if err := a.RemoveServer(e.ctx, "ps-1"); !errors.Is(err, wharf.ErrNotFound) {
		t.Fatalf("removing it again: %v, want ErrNotFound", err)
	}
}

func ptr[T any](v T) *T { return &v }

func manifest(name string, a api.Assignment) api.PackageManifest {
	return api.PackageManifest{Name: name, Version: "1", Assignment: a,
		Files: []api.File{{Path: "f", Size: 3, SHA256: "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"}}}
}

// TestIncrementalEqualsFullLoad checks that the configurations a catalog
// keeps up to date change by change are those a catalog loading the store
// afresh computes (same ETag, same body), as every replica must agree.
func TestIncrementalEqualsFullLoad(t *testing.T) {
	e := newEnv(t)
	c := e.catalog()
	var servers []catalog.Server
	for _, n := range []string{"ps-1", "ps-2"} {
		s, _ := e.enroll(c, n, "linux")
		servers = append(servers, s)
	}
	var ids []string
	for i, name := range []string{"zeta", "alpha", "mid", "alpha", "beta"} {
		a := api.Assignment{All: true}
		if i%2 == 1 {
			a = api.Assignment{Servers: []string{"ps-2"}}
		}
		m := manifest(name, a)
		m.Version = string(rune('1' + i))
		p, _, err := c.CreatePackage(e.ctx, m)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, p.ID)
	}
	if err := c.DeletePackage(e.ctx, ids[2]); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateTask(e.ctx, "ps-1", api.TaskRequest{Type: api.TaskRetryRelocation}); err != nil {
		t.Fatal(err)
	}
	fresh := e.catalog()
	for _, s := range servers {
		body, etag, _, err := c.WaitConfig(e.ctx, s, "", 0)
		if err != nil {
			t.Fatal(err)
		}
		body2, etag2, _, err := fresh.WaitConfig(e.ctx, s, "", 0)
		if err != nil {
			t.Fatal(err)
		}
		if etag != etag2 || string(body) != string(body2) {
			t.Errorf("%s: kept up to date %s\n%s\nloaded afresh %s\n%s", s.Name, etag, body, etag2, body2)
		}
	}
}
