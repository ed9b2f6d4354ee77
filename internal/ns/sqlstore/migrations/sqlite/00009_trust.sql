-- Deployable trust (issue 12):
--
-- * client tokens: read-only credentials of the machines that download
--   (wharf get); only the SHA-256 of each is kept;
-- * alerts counted per server over a window (a server's alerts are
--   rate-limited), from an index;
-- * a package is public (no credential, anywhere) when it is not signed;
--   packages published before keep what they were: an unsigned one was
--   downloadable from its Package Servers by anybody, and stays public.

-- +goose Up
CREATE TABLE client_tokens (
    name       TEXT NOT NULL PRIMARY KEY,
    hash       TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL
) STRICT;

CREATE INDEX alerts_server_created ON alerts (server, created_at);


-- +goose Down
DROP INDEX alerts_server_created;
DROP TABLE client_tokens;
