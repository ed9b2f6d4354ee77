-- Package Servers' health reports: the latest per server (the JSON of
-- api.ServerHealth: volumes, the link audit, the capacity forecast), and
-- the history of each volume's space that the forecast is drawn from (in
-- MiB; reserve_mb -1 when the sample did not say).

-- +goose Up
CREATE TABLE server_health (
    server      TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    received_at TIMESTAMPTZ NOT NULL,
    data        TEXT NOT NULL
);

CREATE TABLE volume_samples (
    server     TEXT COLLATE "C" NOT NULL,
    volume     TEXT COLLATE "C" NOT NULL,
    at         TIMESTAMPTZ NOT NULL,
    total_mb   BIGINT NOT NULL,
    free_mb    BIGINT NOT NULL,
    used_mb    BIGINT NOT NULL,
    reserve_mb BIGINT NOT NULL,
    PRIMARY KEY (server, volume, at)
);

-- +goose Down
DROP TABLE volume_samples;
DROP TABLE server_health;
