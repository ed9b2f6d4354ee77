-- The relocation mode (online, exclusive) of the last configuration, so an
-- attempt resumed at start keeps it.
ALTER TABLE relocation_state ADD COLUMN mode TEXT NOT NULL DEFAULT 'online';
