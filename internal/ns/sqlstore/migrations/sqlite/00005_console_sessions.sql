-- Console sessions and login rate limits, in the database so that every NS
-- replica on it knows them. A session is named by the hex SHA-256 of its
-- cookie value; flashes are the JSON of its one-time messages.

-- +goose Up
CREATE TABLE console_sessions (
    key           TEXT NOT NULL PRIMARY KEY,
    username      TEXT NOT NULL,
    by_token      INTEGER NOT NULL CHECK (by_token IN (0, 1)),
    password_hash TEXT NOT NULL,
    csrf          TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    seen_at       TEXT NOT NULL,
    flashes       TEXT NOT NULL DEFAULT ''
) STRICT;
CREATE INDEX console_sessions_seen ON console_sessions (seen_at);

CREATE TABLE login_buckets (
    client TEXT NOT NULL PRIMARY KEY,
    tokens REAL NOT NULL,
    at     TEXT NOT NULL
) STRICT;

-- +goose Down
DROP TABLE login_buckets;
DROP TABLE console_sessions;
