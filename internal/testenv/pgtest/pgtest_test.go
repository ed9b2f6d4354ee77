package pgtest

import (
	"context"
	"net/url"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

func TestDSN(t *testing.T) {
	ctx := context.Background()
	var dsn string
	t.Run("use", func(t *testing.T) {
		dsn = DSN(t)
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Fatalf("connect to test database: %v", err)
		}
		// Left open on purpose: cleanup must drop a database in use.
		t.Cleanup(func() { conn.Close(context.Background()) })
		var tables int
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'").Scan(&tables); err != nil {
			t.Fatal(err)
		}
		if tables != 0 {
			t.Errorf("new database has %d tables, want 0", tables)
		}
		if _, err := conn.Exec(ctx, "CREATE TABLE t (x int)"); err != nil {
			t.Fatal(err)
		}
	})
	if dsn == "" {
		t.Fatal("no DSN")
	}
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	name := strings.TrimPrefix(u.Path, "/")
	if !strings.HasPrefix(name, "wharf_test_") {
		t.Errorf("database name %q, want prefix wharf_test_", name)
	}

	base, conn, err := connectBase(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_database WHERE datname = $1", name).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("database %s still exists after the test ended (server %s)", name, redact(base))
	}
}

func TestDSNsDiffer(t *testing.T) {
	a, b := DSN(t), DSN(t)
	if a == b {
		t.Errorf("two calls returned the same database %s", a)
	}
}

func TestWithDatabase(t *testing.T) {
	got, err := withDatabase("postgres://u:secret@h:5432/test?sslmode=disable", "wharf_test_ab")
	if err != nil {
		t.Fatal(err)
	}
	if want := "postgres://u:secret@h:5432/wharf_test_ab?sslmode=disable"; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
	if _, err := withDatabase("host=h dbname=x", "y"); err == nil {
		t.Error("keyword/value DSN accepted, want an error")
	}
}
