package sqlstore

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/wharf-project/wharf/internal/ns/catalog"
)

// Store is a catalog.Store kept in SQLite or PostgreSQL. It is safe for
// concurrent use.
type Store struct {
	db  *sql.DB
	d   *dialect
	dsn string // PostgreSQL's, for the notifier's own connection

	blobLock chan struct{} // SQLite's LockBlobs: a mutex that honours ctx
}

var (
	_ catalog.Store     = (*Store)(nil)
	_ catalog.UserStore = (*Store)(nil)
)

// SQLiteFile is the name of the SQLite database Open uses in the data dir.
const SQLiteFile = "wharf.db"

// Connection pool sizes. SQLite has one writer at a time whatever the pool
// size (writers queue on the busy timeout); a few connections let reads run
// beside a write in WAL mode. Each connection has its own page cache.
const (
	sqliteConns   = 4
	postgresConns = 16
	// sqliteBusyTimeoutMillis is how long a writer waits for another's
	// transaction before failing with SQLITE_BUSY.
	sqliteBusyTimeoutMillis = 10000
)

//go:embed migrations/sqlite/*.sql migrations/postgres/*.sql
var migrations embed.FS

// Open opens the catalog database named by dsn and brings its schema up to
// date. An empty dsn or "sqlite:" means SQLite at <dataDir>/wharf.db;
// "sqlite:PATH" or a bare file path means SQLite at PATH; a "postgres://" or
// "postgresql://" URL means PostgreSQL. See the package doc.
func Open(ctx context.Context, dsn, dataDir string) (*Store, error) {
	kind, target, err := parseDSN(dsn, dataDir)
	if err != nil {
		return nil, err
	}
	var s *Store
	switch kind {
	case sqliteDialect.name:
		s, err = openSQLite(ctx, target)
	default:
		s, err = openPostgres(ctx, target)
	}
	if err != nil {
		return nil, err
	}
	if err := s.migrate(ctx); err != nil {
		s.db.Close()
		return nil, err
	}
	return s, nil
}

// parseDSN returns the dialect name and what to open: a file path for
// SQLite, the DSN itself for PostgreSQL.
func parseDSN(dsn, dataDir string) (kind, target string, err error) {
	switch {
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		return postgresDialect.name, dsn, nil
	case dsn == "" || dsn == "sqlite:":
		if dataDir == "" {
			return "", "", errors.New("open catalog database: no data dir for the default SQLite database")
		}
		return sqliteDialect.name, filepath.Join(dataDir, SQLiteFile), nil
	case strings.HasPrefix(dsn, "sqlite:"):
		path := strings.TrimPrefix(dsn, "sqlite:")
		path = strings.TrimPrefix(path, "//") // sqlite:///abs/path.db
		return sqliteDialect.name, path, nil
	case strings.Contains(dsn, "://"):
		scheme, _, _ := strings.Cut(dsn, "://")
		return "", "", fmt.Errorf("open catalog database: unsupported scheme %q: want postgres://, postgresql://, sqlite: or a file path", scheme)
	default:
		return sqliteDialect.name, dsn, nil
	}
}

func openSQLite(ctx context.Context, path string) (*Store, error) {
	if path == "" {
		return nil, errors.New("open sqlite database: empty path")
	}
	if strings.ContainsRune(path, '?') {
		// The driver reads everything after '?' as connection parameters.
		return nil, fmt.Errorf("open sqlite database %s: path must not contain '?'", path)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("open sqlite database %s: %w", path, err)
	}
	params := fmt.Sprintf("?_busy_timeout=%d&_foreign_keys=1&_journal_mode=WAL&_synchronous=FULL&_txlock=immediate",
		sqliteBusyTimeoutMillis)
	db, err := sql.Open("sqlite", path+params)
	if err != nil {
		return nil, fmt.Errorf("open sqlite database %s: %w", path, err)
	}
	db.SetMaxOpenConns(sqliteConns)
	db.SetMaxIdleConns(sqliteConns)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open sqlite database %s: %w", path, err)
	}
	return &Store{db: db, d: &sqliteDialect, blobLock: make(chan struct{}, 1)}, nil
}

func openPostgres(ctx context.Context, dsn string) (*Store, error) {
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		return nil, fmt.Errorf("open postgres database %s: %w", redactDSN(dsn), err)
	}
	db.SetMaxOpenConns(postgresConns)
	db.SetMaxIdleConns(postgresConns)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open postgres database %s: %w", redactDSN(dsn), err)
	}
	return &Store{db: db, d: &postgresDialect, dsn: dsn}, nil
}

// redactDSN hides the password of a URL DSN so it can go into an error.
func redactDSN(dsn string) string {
	scheme, rest, ok := strings.Cut(dsn, "://")
	if !ok {
		return dsn
	}
	userinfo, host, ok := strings.Cut(rest, "@")
	if !ok || strings.Contains(userinfo, "/") {
		return dsn
	}
	if user, _, hasPass := strings.Cut(userinfo, ":"); hasPass {
		return scheme + "://" + user + ":xxxxx@" + host
	}
	return dsn
}

// migrate applies the embedded migrations that the database lacks.
func (s *Store) migrate(ctx context.Context) error {
	fsys, err := fs.Sub(migrations, "migrations/"+s.d.name)
	if err != nil {
		return fmt.Errorf("migrate %s catalog: %w", s.d.name, err)
	}
	opts := []goose.ProviderOption{goose.WithDisableGlobalRegistry(true)}
	if s.d == &postgresDialect {
		// Several NS processes may start at once against one database:
		// an advisory lock lets one migrate while the others wait
		// (probing every second, for up to five minutes).
		locker, err := lock.NewPostgresSessionLocker(lock.WithLockTimeout(1, 300))
		if err != nil {
			return fmt.Errorf("migrate %s catalog: %w", s.d.name, err)
		}
		opts = append(opts, goose.WithSessionLocker(locker))
	}
	p, err := goose.NewProvider(s.d.goose, s.db, fsys, opts...)
	if err != nil {
		return fmt.Errorf("migrate %s catalog: %w", s.d.name, err)
	}
	// p.Close would close s.db; the provider holds nothing else.
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("migrate %s catalog: %w", s.d.name, err)
	}
	return nil
}

// Close closes the database.
func (s *Store) Close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("close %s catalog: %w", s.d.name, err)
	}
	return nil
}

// Dialect reports which database the store uses: "sqlite" or "postgres".
func (s *Store) Dialect() string { return s.d.name }

// Ping checks that the database answers a query.
func (s *Store) Ping(ctx context.Context) error {
	var one int
	if err := s.db.QueryRowContext(ctx, `SELECT 1`).Scan(&one); err != nil {
		return fmt.Errorf("%s database: %w", s.d.name, err)
	}
	return nil
}

// inTx runs fn in a transaction and commits it if fn returns nil. On SQLite
// the transaction holds the write lock from its start.
func (s *Store) inTx(ctx context.Context, fn func(c conn) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	if err := fn(conn{tx, s.d}); err != nil {
		tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// inReadTx runs fn in a read-only transaction, so its queries see one
// snapshot of the database. On SQLite it takes no write lock.
func (s *Store) inReadTx(ctx context.Context, fn func(c conn) error) error {
	opts := &sql.TxOptions{ReadOnly: true}
	if s.d == &postgresDialect {
		opts.Isolation = sql.LevelRepeatableRead
	}
	tx, err := s.db.BeginTx(ctx, opts)
	if err != nil {
		return fmt.Errorf("begin read transaction: %w", err)
	}
	defer tx.Rollback()
	return fn(conn{tx, s.d})
}

// c returns a conn on the pool, outside any transaction.
func (s *Store) c() conn { return conn{s.db, s.d} }

// querier is what *sql.DB and *sql.Tx share.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// conn runs queries written with '?' placeholders on either database.
type conn struct {
	q querier
	d *dialect
}

func (c conn) exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return c.q.ExecContext(ctx, c.d.rebind(query), args...)
}

func (c conn) query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return c.q.QueryContext(ctx, c.d.rebind(query), args...)
}

func (c conn) queryRow(ctx context.Context, query string, args ...any) *sql.Row {
	return c.q.QueryRowContext(ctx, c.d.rebind(query), args...)
}

// isUniqueViolation reports whether err is a unique or primary key
// constraint failure on either database.
func isUniqueViolation(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code == "23505" // unique_violation
	}
	var liteErr *sqlite.Error
	if errors.As(err, &liteErr) {
		code := liteErr.Code()
		return code == sqlite3.SQLITE_CONSTRAINT_UNIQUE || code == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
	}
	return false
}

// affected returns the rows a statement changed.
func affected(res sql.Result) (int64, error) {
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("count affected rows: %w", err)
	}
	return n, nil
}
