-- An alert that repeats while unread is one alert: its fingerprint (the hex
-- SHA-256 of server, level and message) is unique among unread alerts, a
-- repeat adds one to count and moves last_seen_at.

-- +goose Up
ALTER TABLE alerts ADD COLUMN fingerprint TEXT COLLATE "C" NOT NULL DEFAULT '';
ALTER TABLE alerts ADD COLUMN count INTEGER NOT NULL DEFAULT 1;
ALTER TABLE alerts ADD COLUMN last_seen_at TIMESTAMPTZ;
UPDATE alerts SET last_seen_at = created_at, fingerprint = id;
ALTER TABLE alerts ALTER COLUMN last_seen_at SET NOT NULL;
CREATE UNIQUE INDEX alerts_unread_fingerprint ON alerts (fingerprint) WHERE read_at IS NULL;
CREATE INDEX alerts_last_seen ON alerts (last_seen_at);

-- +goose Down
DROP INDEX alerts_last_seen;
DROP INDEX alerts_unread_fingerprint;
ALTER TABLE alerts DROP COLUMN last_seen_at;
ALTER TABLE alerts DROP COLUMN count;
ALTER TABLE alerts DROP COLUMN fingerprint;
