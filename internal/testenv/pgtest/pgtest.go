// Package pgtest gives a test its own PostgreSQL database on the server the
// test environment provides, and drops it when the test ends.
//
// The server is named by the environment variable WHARF_TEST_PG, a URL
// that can create databases; by default postgres://postgres@127.0.0.1:5432/test
// (then the same as user root). scripts/test-setup.sh starts the server on a
// Debian machine. When the server cannot be reached the test fails, saying
// how to start it, unless WHARF_SKIP_PG=1, when it is skipped: a missing
// database is never a silent pass.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Environment variables that configure the package.
const (
	EnvDSN  = "WHARF_TEST_PG" // server to create test databases on
	EnvSkip = "WHARF_SKIP_PG" // "1": skip tests that need PostgreSQL when it is unreachable
)

// DefaultDSN is the server used when WHARF_TEST_PG is unset.
const DefaultDSN = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// startHint tells a developer how to get a server running.
const startHint = "start it with `pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start` " +
	"(or run scripts/test-setup.sh as root), point " + EnvDSN + " at another server, " +
	"or set " + EnvSkip + "=1 to skip these tests"

// connectTimeout bounds every connection attempt to the server.
const connectTimeout = 5 * time.Second

var (
	baseMu  sync.Mutex
	baseDSN string // the first candidate that answered, once one has
)

// DSN creates an empty database named wharf_test_<random hex> for t and
// returns its URL. The database is dropped, with any connections still
// open to it, when t and its subtests end.
func DSN(t testing.TB) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 4*connectTimeout)
	defer cancel()

	base, conn, err := connectBase(ctx)
	if err != nil {
		if os.Getenv(EnvSkip) == "1" {
			t.Skipf("pgtest: PostgreSQL unreachable (%v); skipped because %s=1", err, EnvSkip)
		}
		t.Fatalf("pgtest: PostgreSQL unreachable: %v\n%s", err, startHint)
	}
	defer conn.Close(ctx)

	name := "wharf_test_" + randomHex(8)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("pgtest: create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		if err := drop(base, name); err != nil {
			t.Errorf("pgtest: %v", err)
		}
	})
	dsn, err := withDatabase(base, name)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	return dsn
}

// connectBase connects to the configured server: the URL in WHARF_TEST_PG,
// or else the default as user postgres and then as user root.
func connectBase(ctx context.Context) (string, *pgx.Conn, error) {
	baseMu.Lock()
	defer baseMu.Unlock()
	candidates := []string{baseDSN}
	if baseDSN == "" {
		candidates = candidateDSNs()
	}
	var errs []error
	for _, dsn := range candidates {
		conn, err := connect(ctx, dsn)
		if err == nil {
			baseDSN = dsn
			return dsn, conn, nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", redact(dsn), err))
	}
	return "", nil, errors.Join(errs...)
}

func candidateDSNs() []string {
	if dsn := os.Getenv(EnvDSN); dsn != "" {
		return []string{dsn}
	}
	asRoot := strings.Replace(DefaultDSN, "//postgres@", "//root@", 1)
	return []string{DefaultDSN, asRoot}
}

func connect(ctx context.Context, dsn string) (*pgx.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	return pgx.Connect(ctx, dsn)
}

// drop removes the database, ending the sessions still connected to it.
func drop(base, name string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 6*connectTimeout)
	defer cancel()
	conn, err := connect(ctx, base)
	if err != nil {
		return fmt.Errorf("drop database %s: %w", name, err)
	}
	defer conn.Close(ctx)
	// WITH (FORCE) needs PostgreSQL 13; older servers get the sessions
	// terminated by hand first.
	if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err == nil {
		return nil
	}
	if _, err := conn.Exec(ctx, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()", name); err != nil {
		return fmt.Errorf("drop database %s: end its sessions: %w", name, err)
	}
	if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+name); err != nil {
		return fmt.Errorf("drop database %s: %w", name, err)
	}
	return nil
}

// withDatabase returns the URL dsn with its database replaced by name.
func withDatabase(dsn, name string) (string, error) {
	u, err := url.Parse(dsn)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return "", fmt.Errorf("%s=%s: want a postgres:// URL", EnvDSN, redact(dsn))
	}
	u.Path = "/" + name
	u.RawPath = ""
	return u.String(), nil
}

// redact hides the password in a URL DSN.
func redact(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		return "(unparsable DSN)"
	}
	return u.Redacted()
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic("pgtest: crypto/rand failed: " + err.Error())
	}
	return hex.EncodeToString(b)
}
