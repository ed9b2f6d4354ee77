-- Package Location Status events (the latest per server, and the history
-- of attempts), alerts, and server tasks. Event and task payloads are the
-- JSON of their API types.

-- +goose Up
CREATE TABLE location_latest (
    server      TEXT NOT NULL PRIMARY KEY,
    received_at TEXT NOT NULL,
    data        TEXT NOT NULL
) STRICT;

CREATE TABLE location_history (
    id          TEXT NOT NULL PRIMARY KEY,
    server      TEXT NOT NULL,
    received_at TEXT NOT NULL,
    data        TEXT NOT NULL
) STRICT;

CREATE INDEX location_history_server ON location_history (server, received_at);

CREATE TABLE alerts (
    id         TEXT NOT NULL PRIMARY KEY,
    server     TEXT NOT NULL,
    level      TEXT NOT NULL,
    message    TEXT NOT NULL,
    created_at TEXT NOT NULL,
    read_at    TEXT
) STRICT;

CREATE INDEX alerts_created ON alerts (created_at);

CREATE TABLE server_tasks (
    id         TEXT NOT NULL PRIMARY KEY,
    server     TEXT NOT NULL,
    type       TEXT NOT NULL,
    args       TEXT NOT NULL,
    created_at TEXT NOT NULL,
    done_at    TEXT,
    result     TEXT NOT NULL
) STRICT;

CREATE INDEX server_tasks_pending ON server_tasks (server, done_at);

-- +goose Down
DROP TABLE server_tasks;
DROP TABLE alerts;
DROP TABLE location_history;
DROP TABLE location_latest;
