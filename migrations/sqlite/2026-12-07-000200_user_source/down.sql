-- Back to local users only: directory users (no hash) cannot be kept.
PRAGMA foreign_keys = OFF;
BEGIN IMMEDIATE;
DELETE FROM sessions WHERE user_id IN (SELECT user_id FROM users WHERE password_hash IS NULL);
DELETE FROM users WHERE password_hash IS NULL;
CREATE TABLE users_old (
    user_id       TEXT PRIMARY KEY NOT NULL,
    password_hash TEXT NOT NULL,
    department    TEXT,
    disabled      BOOLEAN NOT NULL DEFAULT 0,
    admin_right   BOOLEAN NOT NULL DEFAULT 0,
    update_right  BOOLEAN NOT NULL DEFAULT 0,
    view_right    BOOLEAN NOT NULL DEFAULT 0,
    failed_logins INTEGER NOT NULL DEFAULT 0,
    locked_until  TIMESTAMP,
    created_at    TIMESTAMP NOT NULL
);
INSERT INTO users_old
    SELECT user_id, password_hash, department, disabled, admin_right, update_right, view_right,
           failed_logins, locked_until, created_at
    FROM users;
DROP TABLE users;
ALTER TABLE users_old RENAME TO users;
COMMIT;
PRAGMA foreign_keys = ON;
