// Package sqlstore keeps the Notification Server's catalog in SQL: a SQLite
// file in the data dir by default, or a PostgreSQL database named by a DSN.
// It implements catalog.Store and is the only package that imports
// database/sql.
//
// # Choosing the database
//
// Open takes the DSN given with `wharf ns serve --db`:
//
//	""                        SQLite at <dataDir>/wharf.db
//	"sqlite:"                 the same
//	"sqlite:/path/x.db"       SQLite at that file (relative paths are relative to the working directory)
//	"/path/x.db"              the same
//	"postgres://..."          PostgreSQL (also "postgresql://...")
//
// SQLite runs in WAL mode with foreign keys on, synchronous=FULL, a busy
// timeout, and transactions that take the write lock when they begin
// (BEGIN IMMEDIATE), so two writers queue instead of failing on a lock
// upgrade. Several NS processes may share one PostgreSQL database.
//
// # Schema
//
// The schema lives in versioned SQL files under migrations/sqlite and
// migrations/postgres (one folder per dialect, since types differ), embedded
// in the binary and applied by goose when the store opens. A migration is
// never edited once released; a change is a new file with the next number in
// both folders. On PostgreSQL a session advisory lock keeps two NS processes
// from migrating at once.
//
// # Values
//
// Times are stored in UTC, truncated to the microsecond (PostgreSQL's
// precision), and come back in UTC; SQLite keeps them as fixed-width text
// that sorts in time order. A zero Server.LastContact is stored as NULL.
// Package names, versions, paths and server names sort bytewise on both
// databases.
package sqlstore
