package sqlstore

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/pressly/goose/v3"
)

// dialect is what differs between the two databases once the schema is in
// place. Queries are written once, with '?' placeholders, in the SQL both
// understand (ON CONFLICT upserts, EXISTS subqueries).
type dialect struct {
	name  string // also the migrations folder
	goose goose.Dialect
	// numbered placeholders: $1, $2, ... instead of ?.
	numbered bool
	// keyShare is appended to a SELECT of packages rows to keep them from
	// being deleted until the transaction ends. SQLite needs none: a write
	// transaction excludes every other writer.
	keyShare string
	// forUpdate is appended to a SELECT of rows the transaction will
	// update, to lock them. SQLite needs none (see keyShare).
	forUpdate string
	// timeArg turns a time into a query argument.
	timeArg func(time.Time) any
}

var (
	sqliteDialect = dialect{
		name:    "sqlite",
		goose:   goose.DialectSQLite3,
		timeArg: func(t time.Time) any { return formatTime(t) },
	}
	postgresDialect = dialect{
		name:      "postgres",
		goose:     goose.DialectPostgres,
		numbered:  true,
		keyShare:  " FOR KEY SHARE",
		forUpdate: " FOR UPDATE",
		timeArg:   func(t time.Time) any { return normTime(t) },
	}
)

// rebind rewrites '?' placeholders to $1, $2, ... where the database wants
// numbered ones. Queries in this package have no '?' in string literals.
func (d *dialect) rebind(query string) string {
	if !d.numbered || !strings.Contains(query, "?") {
		return query
	}
	var b strings.Builder
	b.Grow(len(query) + 16)
	n := 0
	for i := 0; i < len(query); i++ {
		if query[i] == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(query[i])
	}
	return b.String()
}

// time returns t as a query argument: in UTC, to the microsecond.
func (d *dialect) time(t time.Time) any { return d.timeArg(t) }

// nullTime is time, but NULL for the zero time.
func (d *dialect) nullTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return d.timeArg(t)
}

// placeholders returns "?, ?, ?" with n marks.
func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
}

// timeLayout is how SQLite stores times: fixed width, so text order is time
// order.
const timeLayout = "2006-01-02T15:04:05.000000Z"

// normTime is t as both databases keep it.
func normTime(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

func formatTime(t time.Time) string { return normTime(t).Format(timeLayout) }

// timeCol scans a time column of either database into *t, in UTC. NULL
// scans as the zero time.
type timeCol struct{ t *time.Time }

func (c timeCol) Scan(src any) error {
	switch v := src.(type) {
	case nil:
		*c.t = time.Time{}
	case time.Time:
		*c.t = v.UTC()
	case string:
		return c.parse(v)
	case []byte:
		return c.parse(string(v))
	default:
		return fmt.Errorf("scan time: unexpected %T", src)
	}
	return nil
}

func (c timeCol) parse(s string) error {
	t, err := time.Parse(timeLayout, s)
	if err != nil {
		return fmt.Errorf("scan time: %w", err)
	}
	*c.t = t.UTC()
	return nil
}
