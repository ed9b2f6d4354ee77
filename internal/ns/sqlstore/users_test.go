package sqlstore_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/wharf-project/wharf/internal/ns/catalog"
	"github.com/wharf-project/wharf/internal/ns/sqlstore"
	"github.com/wharf-project/wharf/internal/testenv/pgtest"
	"github.com/wharf-project/wharf/internal/wharf"
)

// TestUsers runs the console-user part of the catalog.Store conformance
// suite on SQLite and on PostgreSQL, and the catalog's password rules over
// each.
func TestUsers(t *testing.T) {
	cases := []suiteCase{
		{"UserRoundTrip", testUserRoundTrip},
		{"UserRace", testUserRace},
		{"CatalogPasswords", testCatalogPasswords},
	}
	for _, db := range []struct {
		name string
		open func(t *testing.T) *sqlstore.Store
	}{
		{"sqlite", func(t *testing.T) *sqlstore.Store { return open(t, "", t.TempDir()) }},
		{"postgres", func(t *testing.T) *sqlstore.Store { return open(t, pgtest.DSN(t), "") }},
	} {
		t.Run(db.name, func(t *testing.T) {
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) { c.fn(t, db.open(t)) })
			}
		})
	}
}

func testUserRoundTrip(t *testing.T, s *sqlstore.Store) {
	ctx := context.Background()
	_, err := s.User(ctx, "alice")
	wantErr(t, "User(unknown)", err, wharf.ErrNotFound)
	if list, err := s.ListUsers(ctx); err != nil || len(list) != 0 {
		t.Fatalf("ListUsers(empty) = %v, %v", list, err)
	}
	alice := catalog.User{Name: "alice", PasswordHash: "$2a$10$hash-a", CreatedAt: t0, UpdatedAt: t0}
	if err := s.CreateUser(ctx, alice); err != nil {
		t.Fatalf("CreateUser: %v", err)
	}
	err = s.CreateUser(ctx, catalog.User{Name: "alice", PasswordHash: "other", CreatedAt: t0, UpdatedAt: t0})
	wantErr(t, "CreateUser(taken)", err, wharf.ErrExists)
	bob := catalog.User{Name: "bob", PasswordHash: "$2a$10$hash-b", CreatedAt: t0.Add(time.Hour), UpdatedAt: t0.Add(time.Hour)}
	if err := s.CreateUser(ctx, bob); err != nil {
		t.Fatalf("CreateUser(bob): %v", err)
	}
	got, err := s.User(ctx, "alice")
	want := catalog.User{Name: "alice", PasswordHash: "$2a$10$hash-a", CreatedAt: norm(t0), UpdatedAt: norm(t0)}
	if err != nil || got != want {
		t.Fatalf("User(alice) = %+v, %v; want %+v", got, err, want)
	}
	list, err := s.ListUsers(ctx)
	if err != nil || len(list) != 2 || list[0].Name != "alice" || list[1].Name != "bob" {
		t.Fatalf("ListUsers = %+v, %v; want alice, bob", list, err)
	}

	later := t0.Add(48 * time.Hour)
	if err := s.SetUserPassword(ctx, "alice", "$2a$10$new", later); err != nil {
		t.Fatalf("SetUserPassword: %v", err)
	}
	got, _ = s.User(ctx, "alice")
	if got.PasswordHash != "$2a$10$new" || !got.UpdatedAt.Equal(norm(later)) || !got.CreatedAt.Equal(norm(t0)) {
		t.Errorf("after SetUserPassword: %+v", got)
	}
	wantErr(t, "SetUserPassword(unknown)", s.SetUserPassword(ctx, "carol", "x", later), wharf.ErrNotFound)

	if err := s.DeleteUser(ctx, "alice"); err != nil {
		t.Fatalf("DeleteUser: %v", err)
	}
	wantErr(t, "DeleteUser(again)", s.DeleteUser(ctx, "alice"), wharf.ErrNotFound)
	_, err = s.User(ctx, "alice")
	wantErr(t, "User(deleted)", err, wharf.ErrNotFound)
	if list, _ := s.ListUsers(ctx); len(list) != 1 || list[0].Name != "bob" {
		t.Errorf("ListUsers after delete = %+v", list)
	}
}

// testUserRace creates one name from many goroutines: exactly one wins.
func testUserRace(t *testing.T, s *sqlstore.Store) {
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Go(func() {
			errs <- s.CreateUser(ctx, catalog.User{Name: "raced", PasswordHash: "h", CreatedAt: t0, UpdatedAt: t0})
		})
	}
	wg.Wait()
	close(errs)
	wins := 0
	for err := range errs {
		switch {
		case err == nil:
			wins++
		case !errors.Is(err, wharf.ErrExists):
			t.Errorf("racing CreateUser: %v, want nil or ErrExists", err)
		}
	}
	if wins != 1 {
		t.Errorf("%d racing creates won, want 1", wins)
	}
}

func testCatalogPasswords(t *testing.T, s *sqlstore.Store) {
	ctx := context.Background()
	cat := catalog.NewUsers(s, time.Now)
	for _, bad := range []struct{ name, pw string }{
		{"", "long enough password"},
		{"-dash", "long enough password"},
		{"sp ace", "long enough password"},
		{"alice", "short"},
		{"alice", string(make([]byte, 73))},
	} {
		if _, err := cat.CreateUser(ctx, bad.name, bad.pw); !errors.Is(err, wharf.ErrInvalid) {
			t.Errorf("CreateUser(%q, %d bytes) = %v, want ErrInvalid", bad.name, len(bad.pw), err)
		}
	}
	u, err := cat.CreateUser(ctx, "Alice@Example.org", "correct horse battery")
	if err != nil || u.Name != "alice@example.org" {
		t.Fatalf("CreateUser = %+v, %v; want the name lowercased", u, err)
	}
	if u.PasswordHash == "" || u.PasswordHash == "correct horse battery" {
		t.Fatalf("password kept as %q, want a bcrypt hash", u.PasswordHash)
	}
	if _, err := cat.CreateUser(ctx, "alice@example.org", "another password"); !errors.Is(err, wharf.ErrExists) {
		t.Errorf("CreateUser(taken) = %v, want ErrExists", err)
	}
	if _, err := cat.CheckUserPassword(ctx, "ALICE@example.org", "correct horse battery"); err != nil {
		t.Errorf("CheckUserPassword(right) = %v", err)
	}
	for _, bad := range []struct{ name, pw string }{
		{"alice@example.org", "wrong horse battery"},
		{"nobody", "correct horse battery"},
		{"alice@example.org", ""},
		{"", ""},
	} {
		if _, err := cat.CheckUserPassword(ctx, bad.name, bad.pw); !errors.Is(err, wharf.ErrUnauthorized) {
			t.Errorf("CheckUserPassword(%q, %q) = %v, want ErrUnauthorized", bad.name, bad.pw, err)
		}
	}
	before, _ := cat.UserPasswordHash(ctx, "alice@example.org")
	if err := cat.SetUserPassword(ctx, "alice@example.org", "a new long password"); err != nil {
		t.Fatalf("SetUserPassword: %v", err)
	}
	if after, _ := cat.UserPasswordHash(ctx, "alice@example.org"); after == before {
		t.Error("the password hash did not change")
	}
	if _, err := cat.CheckUserPassword(ctx, "alice@example.org", "correct horse battery"); !errors.Is(err, wharf.ErrUnauthorized) {
		t.Errorf("old password still works: %v", err)
	}
	if list, err := cat.ListUsers(ctx); err != nil || len(list) != 1 || list[0].PasswordHash != "" {
		t.Errorf("ListUsers = %+v, %v; want one user without its hash", list, err)
	}
	if err := cat.DeleteUser(ctx, "alice@example.org"); err != nil {
		t.Fatal(err)
	}
	if _, err := cat.CheckUserPassword(ctx, "alice@example.org", "a new long password"); !errors.Is(err, wharf.ErrUnauthorized) {
		t.Errorf("deleted user can log in: %v", err)
	}
}
