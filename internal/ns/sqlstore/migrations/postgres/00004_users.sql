-- Console users: administrators who log in to the NS web console with a
-- name and a password. Only the bcrypt hash of the password is kept.

-- +goose Up
CREATE TABLE users (
    name          TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    password_hash TEXT NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL,
    updated_at    TIMESTAMPTZ NOT NULL
);

-- +goose Down
DROP TABLE users;
