package sqlstore

import (
	"context"
	"path/filepath"
	"testing"
	"time"
)

func TestParseDSN(t *testing.T) {
	dir := filepath.Join("data", "ns")
	tests := []struct {
		dsn, kind, target string
	}{
		{"", "sqlite", filepath.Join(dir, "wharf.db")},
		{"sqlite:", "sqlite", filepath.Join(dir, "wharf.db")},
		{"sqlite:/var/lib/wharf/x.db", "sqlite", "/var/lib/wharf/x.db"},
		{"sqlite:///var/lib/wharf/x.db", "sqlite", "/var/lib/wharf/x.db"},
		{"sqlite:rel.db", "sqlite", "rel.db"},
		{"/var/lib/wharf/x.db", "sqlite", "/var/lib/wharf/x.db"},
		{`C:\Wharf\wharf.db`, "sqlite", `C:\Wharf\wharf.db`},
		{"postgres://u@h/db?sslmode=disable", "postgres", "postgres://u@h/db?sslmode=disable"},
		{"postgresql://u@h/db", "postgres", "postgresql://u@h/db"},
	}
	for _, tt := range tests {
		kind, target, err := parseDSN(tt.dsn, dir)
		if err != nil || kind != tt.kind || target != tt.target {
			t.Errorf("parseDSN(%q) = %q, %q, %v; want %q, %q", tt.dsn, kind, target, err, tt.kind, tt.target)
		}
	}
	for _, dsn := range []string{"mysql://h/db", "http://x"} {
		if _, _, err := parseDSN(dsn, dir); err == nil {
			t.Errorf("parseDSN(%q) succeeded, want an error", dsn)
		}
	}
	if _, _, err := parseDSN("", ""); err == nil {
		t.Error("parseDSN with no DSN and no data dir succeeded, want an error")
	}
}

func TestRedactDSN(t *testing.T) {
	for in, want := range map[string]string{
		"postgres://u:secret@h:5432/db": "postgres://u:xxxxx@h:5432/db",
		"postgres://u@h/db":             "postgres://u@h/db",
		"postgres://h/db":               "postgres://h/db",
	} {
		if got := redactDSN(in); got != want {
			t.Errorf("redactDSN(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestRebind(t *testing.T) {
	q := `SELECT a FROM t WHERE b = ? AND c IN (?, ?)`
	if got := sqliteDialect.rebind(q); got != q {
		t.Errorf("sqlite rebind changed the query: %s", got)
	}
	if got, want := postgresDialect.rebind(q), `SELECT a FROM t WHERE b = $1 AND c IN ($2, $3)`; got != want {
		t.Errorf("postgres rebind = %s, want %s", got, want)
	}
}

func TestTimeFormat(t *testing.T) {
	tm := time.Date(2025, 1, 2, 3, 4, 5, 6007008, time.FixedZone("", 3600))
	if got, want := formatTime(tm), "2025-01-02T02:04:05.006007Z"; got != want {
		t.Errorf("formatTime = %s, want %s", got, want)
	}
	var back time.Time
	if err := (timeCol{&back}).Scan(formatTime(tm)); err != nil || !back.Equal(tm.Truncate(time.Microsecond)) {
		t.Errorf("scan %s = %v, %v", formatTime(tm), back, err)
	}
}

// TestSQLitePragmas checks every pooled connection gets the settings the
// package doc promises.
func TestSQLitePragmas(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, "", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// Hold several connections at once so more than one is checked.
	var conns []interface{ Close() error }
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := range sqliteConns {
		c, err := s.db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		for pragma, want := range map[string]string{
			"journal_mode": "wal",
			"foreign_keys": "1",
			"busy_timeout": "10000",
			"synchronous":  "2", // FULL
		} {
			var got string
			if err := c.QueryRowContext(ctx, "PRAGMA "+pragma).Scan(&got); err != nil {
				t.Fatalf("conn %d: PRAGMA %s: %v", i, pragma, err)
			}
			if got != want {
				t.Errorf("conn %d: PRAGMA %s = %s, want %s", i, pragma, got, want)
			}
		}
	}
}
