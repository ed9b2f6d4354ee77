-- Initial catalog schema for PostgreSQL.
--
-- Times are TIMESTAMPTZ (microsecond precision); the store writes them in
-- UTC, truncated to the microsecond. Text columns that listings sort by use
-- COLLATE "C" so the order is bytewise, as in SQLite and Go, whatever the
-- database's default collation is.

-- +goose Up
CREATE TABLE settings (
    key   TEXT NOT NULL PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE packages (
    id              TEXT        COLLATE "C" NOT NULL PRIMARY KEY,
    name            TEXT        COLLATE "C" NOT NULL,
    version         TEXT        COLLATE "C" NOT NULL,
    size            BIGINT                  NOT NULL,
    file_count      BIGINT                  NOT NULL,
    assign_all      BOOLEAN                 NOT NULL,
    custom_location TEXT                    NOT NULL,
    signed          BOOLEAN                 NOT NULL,
    created_at      TIMESTAMPTZ             NOT NULL,
    UNIQUE (name, version)
);

CREATE INDEX packages_name_created ON packages (name, created_at);

CREATE TABLE package_files (
    package_id TEXT   COLLATE "C" NOT NULL REFERENCES packages (id) ON DELETE CASCADE,
    path       TEXT   COLLATE "C" NOT NULL,
    size       BIGINT             NOT NULL,
    sha256     TEXT               NOT NULL,
    PRIMARY KEY (package_id, path)
);

CREATE INDEX package_files_sha256 ON package_files (sha256);

CREATE TABLE package_servers (
    package_id  TEXT COLLATE "C" NOT NULL REFERENCES packages (id) ON DELETE CASCADE,
    server_name TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (package_id, server_name)
);

CREATE INDEX package_servers_server ON package_servers (server_name);

CREATE TABLE enroll_tokens (
    hash       TEXT        NOT NULL PRIMARY KEY,
    expires_at TIMESTAMPTZ NOT NULL,
    used_at    TIMESTAMPTZ
);

CREATE TABLE servers (
    name            TEXT        COLLATE "C" NOT NULL PRIMARY KEY,
    os              TEXT                    NOT NULL,
    url             TEXT                    NOT NULL,
    credential_hash TEXT                    NOT NULL UNIQUE,
    signing_key     BYTEA                   NOT NULL,
    enrolled_at     TIMESTAMPTZ             NOT NULL,
    last_contact    TIMESTAMPTZ
);

CREATE TABLE package_states (
    server_name TEXT        COLLATE "C" NOT NULL,
    package_id  TEXT        COLLATE "C" NOT NULL REFERENCES packages (id) ON DELETE CASCADE,
    state       TEXT                    NOT NULL,
    reason      TEXT                    NOT NULL,
    path        TEXT        COLLATE "C" NOT NULL,
    updated_at  TIMESTAMPTZ             NOT NULL,
    PRIMARY KEY (server_name, package_id)
);

CREATE INDEX package_states_package ON package_states (package_id);

-- +goose Down
DROP TABLE package_states;
DROP TABLE servers;
DROP TABLE enroll_tokens;
DROP TABLE package_servers;
DROP TABLE package_files;
DROP TABLE packages;
DROP TABLE settings;
