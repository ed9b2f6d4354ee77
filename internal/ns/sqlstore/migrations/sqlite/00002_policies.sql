-- Policies: the global Package Server Settings and Global Site Server
-- Settings (server = '') and per-server overrides. data is the JSON of the
-- settings; version changes on every edit.

-- +goose Up
CREATE TABLE policies (
    server     TEXT    NOT NULL,
    kind       TEXT    NOT NULL,
    data       TEXT    NOT NULL,
    version    INTEGER NOT NULL,
    updated_at TEXT    NOT NULL,
    PRIMARY KEY (server, kind)
) STRICT;

-- +goose Down
DROP TABLE policies;
