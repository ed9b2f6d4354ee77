-- Relocation (SPEC §6): where a package left behind is linked from, the
-- journal of moves in flight, and the counters of the relocation controller.

-- The link (symlink, or junction on Windows) at a store root that points to
-- the package's folder when a relocation could not move it; '' when none.
ALTER TABLE packages ADD COLUMN link TEXT NOT NULL DEFAULT '';

-- Open entries of the relocation journal (relocate.Journal), in the order
-- they began (seq). An entry is removed when it closes.
CREATE TABLE relocation_journal (
    seq  INTEGER PRIMARY KEY AUTOINCREMENT,
    key  TEXT NOT NULL UNIQUE,
    data TEXT NOT NULL -- relocate.Entry as JSON
);

-- The relocation controller's state: one row (id 1).
CREATE TABLE relocation_state (
    id            INTEGER PRIMARY KEY CHECK (id = 1),
    storage_path  TEXT NOT NULL DEFAULT '', -- the primary location in effect
    from_path     TEXT NOT NULL DEFAULT '', -- the storage path before the current target
    target        TEXT NOT NULL DEFAULT '', -- where the store is moving or last moved to
    last_tried    TEXT NOT NULL DEFAULT '', -- the target of the last attempt, refused ones included
    running       INTEGER NOT NULL DEFAULT 0, -- an attempt was under way (resumed at start)
    run_retry     INTEGER NOT NULL DEFAULT 0, -- ... touching linked packages only
    run_manual    INTEGER NOT NULL DEFAULT 0, -- ... started by hand
    attempts_done INTEGER NOT NULL DEFAULT 0, -- automatic retries done toward target
    last_status   INTEGER NOT NULL DEFAULT 0, -- status bits of the last attempt (SPEC §6.3)
    last_attempt  INTEGER NOT NULL DEFAULT 0, -- unix nanoseconds
    last_message  TEXT NOT NULL DEFAULT '',
    next_retry    INTEGER NOT NULL DEFAULT 0, -- unix nanoseconds; 0: none scheduled
    last_event    TEXT NOT NULL DEFAULT '',  -- the last Package Location Status event, JSON
    event_sent    INTEGER NOT NULL DEFAULT 1  -- the NS acknowledged last_event
);
