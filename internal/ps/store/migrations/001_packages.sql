-- Packages the Package Server has or is getting, and where each one is.
CREATE TABLE packages (
    id              TEXT PRIMARY KEY,
    name            TEXT NOT NULL,
    version         TEXT NOT NULL,
    signed          INTEGER NOT NULL DEFAULT 0,
    custom_location TEXT NOT NULL DEFAULT '',
    root            TEXT NOT NULL,   -- the store root holding it
    path            TEXT NOT NULL,   -- its folder: <root>/<id>
    state           TEXT NOT NULL,   -- downloading, ready, failed
    reason          TEXT NOT NULL DEFAULT '',
    size            INTEGER NOT NULL,
    file_count      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL -- unix nanoseconds
);

CREATE TABLE files (
    package_id TEXT NOT NULL REFERENCES packages(id) ON DELETE CASCADE,
    path       TEXT NOT NULL,
    size       INTEGER NOT NULL,
    sha256     TEXT NOT NULL,
    mtime      INTEGER NOT NULL DEFAULT 0, -- unix nanoseconds, set when ready
    PRIMARY KEY (package_id, path)
);
