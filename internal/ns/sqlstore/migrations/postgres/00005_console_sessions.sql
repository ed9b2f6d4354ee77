-- Console sessions and login rate limits, in the database so that every NS
-- replica on it knows them. A session is named by the hex SHA-256 of its
-- cookie value; flashes are the JSON of its one-time messages.

-- +goose Up
CREATE TABLE console_sessions (
    key           TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    username      TEXT NOT NULL,
    by_token      BOOLEAN NOT NULL,
    password_hash TEXT NOT NULL,
    csrf          TEXT NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL,
    seen_at       TIMESTAMPTZ NOT NULL,
    flashes       TEXT NOT NULL DEFAULT ''
);
CREATE INDEX console_sessions_seen ON console_sessions (seen_at);

CREATE TABLE login_buckets (
    client TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    tokens DOUBLE PRECISION NOT NULL,
    at     TIMESTAMPTZ NOT NULL
);

-- +goose Down
DROP TABLE login_buckets;
DROP TABLE console_sessions;
