-- Initial catalog schema for SQLite.
--
-- Times are TEXT in one fixed-width UTC format, 2006-01-02T15:04:05.000000Z,
-- so they sort and compare as strings. Booleans are INTEGER 0 or 1. Tables
-- are STRICT so a value of the wrong type is an error, not a silent
-- conversion.

-- +goose Up
CREATE TABLE settings (
    key   TEXT NOT NULL PRIMARY KEY,
    value TEXT NOT NULL
) STRICT;

CREATE TABLE packages (
    id              TEXT    NOT NULL PRIMARY KEY,
    name            TEXT    NOT NULL,
    version         TEXT    NOT NULL,
    size            INTEGER NOT NULL,
    file_count      INTEGER NOT NULL,
    assign_all      INTEGER NOT NULL CHECK (assign_all IN (0, 1)),
    custom_location TEXT    NOT NULL,
    signed          INTEGER NOT NULL CHECK (signed IN (0, 1)),
    created_at      TEXT    NOT NULL,
    UNIQUE (name, version)
) STRICT;

CREATE INDEX packages_name_created ON packages (name, created_at);

CREATE TABLE package_files (
    package_id TEXT    NOT NULL REFERENCES packages (id) ON DELETE CASCADE,
    path       TEXT    NOT NULL,
    size       INTEGER NOT NULL,
    sha256     TEXT    NOT NULL,
    PRIMARY KEY (package_id, path)
) STRICT;

CREATE INDEX package_files_sha256 ON package_files (sha256);

CREATE TABLE package_servers (
    package_id  TEXT NOT NULL REFERENCES packages (id) ON DELETE CASCADE,
    server_name TEXT NOT NULL,
    PRIMARY KEY (package_id, server_name)
) STRICT;

CREATE INDEX package_servers_server ON package_servers (server_name);

CREATE TABLE enroll_tokens (
    hash       TEXT NOT NULL PRIMARY KEY,
    expires_at TEXT NOT NULL,
    used_at    TEXT
) STRICT;

CREATE TABLE servers (
    name            TEXT NOT NULL PRIMARY KEY,
    os              TEXT NOT NULL,
    url             TEXT NOT NULL,
    credential_hash TEXT NOT NULL UNIQUE,
    signing_key     BLOB NOT NULL,
    enrolled_at     TEXT NOT NULL,
    last_contact    TEXT
) STRICT;

CREATE TABLE package_states (
    server_name TEXT NOT NULL,
    package_id  TEXT NOT NULL REFERENCES packages (id) ON DELETE CASCADE,
    state       TEXT NOT NULL,
    reason      TEXT NOT NULL,
    path        TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    PRIMARY KEY (server_name, package_id)
) STRICT;

CREATE INDEX package_states_package ON package_states (package_id);

-- +goose Down
DROP TABLE package_states;
DROP TABLE servers;
DROP TABLE enroll_tokens;
DROP TABLE package_servers;
DROP TABLE package_files;
DROP TABLE packages;
DROP TABLE settings;
