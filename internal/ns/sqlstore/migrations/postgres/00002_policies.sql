-- Policies: the global Package Server Settings and Global Site Server
-- Settings (server = '') and per-server overrides. data is the JSON of the
-- settings; version changes on every edit.

-- +goose Up
CREATE TABLE policies (
    server     TEXT        COLLATE "C" NOT NULL,
    kind       TEXT        COLLATE "C" NOT NULL,
    data       TEXT                    NOT NULL,
    version    BIGINT                  NOT NULL,
    updated_at TIMESTAMPTZ             NOT NULL,
    PRIMARY KEY (server, kind)
);

-- +goose Down
DROP TABLE policies;
