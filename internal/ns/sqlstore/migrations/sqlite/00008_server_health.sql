-- Package Servers' health reports: the latest per server (the JSON of
-- api.ServerHealth: volumes, the link audit, the capacity forecast), and
-- the history of each volume's space that the forecast is drawn from (in
-- MiB; reserve_mb -1 when the sample did not say).

-- +goose Up
CREATE TABLE server_health (
    server      TEXT NOT NULL PRIMARY KEY,
    received_at TEXT NOT NULL,
    data        TEXT NOT NULL
) STRICT;

CREATE TABLE volume_samples (
    server     TEXT    NOT NULL,
    volume     TEXT    NOT NULL,
    at         TEXT    NOT NULL,
    total_mb   INTEGER NOT NULL,
    free_mb    INTEGER NOT NULL,
    used_mb    INTEGER NOT NULL,
    reserve_mb INTEGER NOT NULL,
    PRIMARY KEY (server, volume, at)
) STRICT;

-- +goose Down
DROP TABLE volume_samples;
DROP TABLE server_health;
