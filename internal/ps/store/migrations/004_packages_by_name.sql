-- Pages of the package list in name order (wharf ps status) without
-- sorting the whole index.
CREATE INDEX packages_by_name ON packages (name, version, id);
