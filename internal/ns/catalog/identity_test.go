package catalog_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/wharf-project/wharf/internal/api"
	"github.com/wharf-project/wharf/internal/ns/catalog"
	"github.com/wharf-project/wharf/internal/ns/sqlstore"
	"github.com/wharf-project/wharf/internal/testenv/pgtest"
	"github.com/wharf-project/wharf/internal/wharf"
)

// TestIdentitiesAcrossCatalogs: two catalogs on one SQLite store and one
// in-process bus (as one NS... and a second one that shares it).
func TestIdentitiesAcrossCatalogs(t *testing.T) {
	e := newEnv(t)
	a, b := e.catalog(), e.catalog()
	revocationScenario(t, e.ctx, a, b, time.Second)
}

// TestRevocationReachesEveryReplica: two NS replicas on one PostgreSQL
// database, each with its own store and LISTEN/NOTIFY listener: a client
// token revoked, a server removed, a credential or the admin token
// replaced through one stops working on the other within a second.
func TestRevocationReachesEveryReplica(t *testing.T) {
	dsn := pgtest.DSN(t)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	replica := func() *catalog.Catalog {
		st, err := sqlstore.Open(ctx, dsn, "")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		log := slog.New(slog.NewTextHandler(io.Discard, nil))
		n, err := st.PGNotifier(log)
		if err != nil {
			t.Fatal(err)
		}
		c := catalog.New(st, blobsOK{}, n, time.Now, log)
		go c.Serve(ctx)
		return c
	}
	a := replica()
	if _, _, err := a.InitAdminToken(ctx); err != nil {
		t.Fatal(err)
	}
	b := replica()
	// B listens once a change through A reaches it: a probe token, known
	// to B, revoked through A, refused by B.
	probe, err := a.CreateClientToken(ctx, "probe")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Authenticate(ctx, probe.Token); err != nil {
		t.Fatal(err)
	}
	if err := a.RevokeClientToken(ctx, "probe"); err != nil {
		t.Fatal(err)
	}
	for start := time.Now(); ; {
		if _, err := b.Authenticate(ctx, probe.Token); errors.Is(err, wharf.ErrUnauthorized) {
			break
		}
		if time.Since(start) > 30*time.Second {
			t.Fatal("B does not hear A's changes after 30 s: its LISTEN connection is not up")
		}
		time.Sleep(10 * time.Millisecond)
	}
	revocationScenario(t, ctx, a, b, time.Second)
}

// revocationScenario: every identity works on both catalogs, then each is
// revoked or replaced through a; b must refuse the old one within within.
func revocationScenario(t *testing.T, ctx context.Context, a, b *catalog.Catalog, within time.Duration) {
	t.Helper()
	both := map[string]*catalog.Catalog{"A": a, "B": b}
	works := func(what, token string, role catalog.Role) {
		t.Helper()
		for name, c := range both {
			p, err := c.Authenticate(ctx, token)
			if err != nil || p.Role != role {
				t.Fatalf("%s on %s: %+v, %v; want role %s", what, name, p, err, role)
			}
		}
	}
	refusedWithin := func(what, token string) {
		t.Helper()
		start := time.Now()
		for name, c := range both {
			for {
				_, err := c.Authenticate(ctx, token)
				if errors.Is(err, wharf.ErrUnauthorized) {
					break
				}
				if time.Since(start) > within {
					t.Fatalf("%s still works on %s after %s (%v)", what, name, within, err)
				}
				time.Sleep(time.Millisecond)
			}
		}
		t.Logf("%s refused on both within %s", what, time.Since(start).Round(time.Millisecond))
	}

	// A client token.
	ct, err := a.CreateClientToken(ctx, "Laptops")
	if err != nil {
		t.Fatal(err)
	}
	if ct.Name != "laptops" {
		t.Fatalf("name %q, want it lowercased", ct.Name)
	}
	works("the client token", ct.Token, catalog.RoleClient)
	if _, err := a.CreateClientToken(ctx, "laptops"); !errors.Is(err, wharf.ErrExists) {
		t.Fatalf("a second token of the same name: %v, want ErrExists", err)
	}
	list, err := b.ListClientTokens(ctx)
	if err != nil || len(list.Tokens) != 1 || list.Tokens[0].Token != "" {
		t.Fatalf("list: %+v, %v (want one, without its token)", list, err)
	}
	if err := a.RevokeClientToken(ctx, "laptops"); err != nil {
		t.Fatal(err)
	}
	refusedWithin("a revoked client token", ct.Token)
	if err := a.RevokeClientToken(ctx, "laptops"); !errors.Is(err, wharf.ErrNotFound) {
		t.Fatalf("revoked twice: %v, want ErrNotFound", err)
	}

	// A Package Server: its credential replaced, then the server removed.
	tok, err := a.MintEnrollToken(ctx)
	if err != nil {
		t.Fatal(err)
	}
	en, err := a.Enroll(ctx, api.EnrollRequest{Token: tok.Token, Name: "ps-1", OS: "linux", URL: "http://ps-1:8081"})
	if err != nil {
		t.Fatal(err)
	}
	works("the server credential", en.Credential, catalog.RoleServer)
	task, err := a.RequestCredentialRotation(ctx, "ps-1")
	if err != nil || task.Type != api.TaskRotateCredential {
		t.Fatalf("rotation task: %+v, %v", task, err)
	}
	s, _ := a.AuthenticateServer(ctx, en.Credential)
	raw := make([]byte, 32)
	rand.Read(raw)
	next := "wharf-ps-" + base64.RawURLEncoding.EncodeToString(raw)
	for _, bad := range []string{"", "wharf-ps-short", "wharf-client-" + base64.RawURLEncoding.EncodeToString(raw)} {
		if err := a.RotateServerCredential(ctx, s, api.CredentialRotation{Credential: bad}); !errors.Is(err, wharf.ErrInvalid) {
			t.Fatalf("rotation to %q: %v, want ErrInvalid", bad, err)
		}
	}
	if err := a.RotateServerCredential(ctx, s, api.CredentialRotation{Credential: next, TaskID: task.ID}); err != nil {
		t.Fatal(err)
	}
	refusedWithin("a replaced server credential", en.Credential)
	works("the new server credential", next, catalog.RoleServer)
	if done, err := a.TaskStatus(ctx, "ps-1", task.ID); err != nil || done.DoneAt.IsZero() {
		t.Fatalf("the rotation task after the rotation: %+v, %v", done, err)
	}
	if err := a.RemoveServer(ctx, "ps-1"); err != nil {
		t.Fatal(err)
	}
	refusedWithin("the credential of a removed server", next)

	// The admin token.
	old, err := a.RotateAdminToken(ctx) // the first replaces the token InitAdminToken made
	if err != nil {
		t.Fatal(err)
	}
	works("the admin token", old, catalog.RoleAdmin)
	fresh, err := a.RotateAdminToken(ctx)
	if err != nil {
		t.Fatal(err)
	}
	refusedWithin("a replaced admin token", old)
	works("the new admin token", fresh, catalog.RoleAdmin)
	// Nothing is anonymous by mistake: a token of no kind is refused.
	for _, bad := range []string{"x", "wharf-admin-", "wharf-client-x", "wharf-ps-x"} {
		if _, err := a.Authenticate(ctx, bad); !errors.Is(err, wharf.ErrUnauthorized) {
			t.Fatalf("token %q: %v, want ErrUnauthorized", bad, err)
		}
	}
	if p, err := a.Authenticate(ctx, ""); err != nil || p.Role != catalog.RoleAnonymous {
		t.Fatalf("no token: %+v, %v; want anonymous", p, err)
	}
}

// stuckBlobs cannot remove a blob, as on Windows while a server downloads
// it.
type stuckBlobs struct{ blobsOK }

func (stuckBlobs) Delete(wharf.Digest) error { return errors.New("sharing violation") }

// TestDeleteStandsWhenABlobStays: a package is deleted even when one of its
// blobs cannot be removed at that moment; the blob stays as garbage.
func TestDeleteStandsWhenABlobStays(t *testing.T) {
	e := newEnv(t)
	c := catalog.New(e.store, stuckBlobs{}, e.bus, time.Now, slog.New(slog.NewTextHandler(io.Discard, nil)))
	p, _, err := c.CreatePackage(e.ctx, manifest("doomed", api.Assignment{All: true}))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.DeletePackage(e.ctx, p.ID); err != nil {
		t.Fatalf("delete with a blob that stays: %v", err)
	}
	if _, err := c.Package(e.ctx, p.ID); !errors.Is(err, wharf.ErrNotFound) {
		t.Fatalf("the package after its deletion: %v", err)
	}
}
