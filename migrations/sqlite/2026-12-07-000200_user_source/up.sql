-- Where a user's password is checked: `local` (the Argon2id hash here) or `directory` (a bind
-- as `dn`, no hash stored). SQLite cannot make a column nullable in place, so the table is
-- rebuilt with its rows; foreign keys are off meanwhile, since sessions refer to it by name.
PRAGMA foreign_keys = OFF;
BEGIN IMMEDIATE;
CREATE TABLE users_new (
    user_id       TEXT PRIMARY KEY NOT NULL,
    password_hash TEXT,
    department    TEXT,
    disabled      BOOLEAN NOT NULL DEFAULT 0,
    admin_right   BOOLEAN NOT NULL DEFAULT 0,
    update_right  BOOLEAN NOT NULL DEFAULT 0,
    view_right    BOOLEAN NOT NULL DEFAULT 0,
    failed_logins INTEGER NOT NULL DEFAULT 0,
    locked_until  TIMESTAMP,
    created_at    TIMESTAMP NOT NULL,
    source        TEXT NOT NULL DEFAULT 'local' CHECK (source IN ('local', 'directory')),
    dn            TEXT,
    CHECK (source = 'directory' OR password_hash IS NOT NULL)
);
INSERT INTO users_new (user_id, password_hash, department, disabled, admin_right, update_right,
                       view_right, failed_logins, locked_until, created_at)
    SELECT user_id, password_hash, department, disabled, admin_right, update_right, view_right,
           failed_logins, locked_until, created_at
    FROM users;
DROP TABLE users;
ALTER TABLE users_new RENAME TO users;
COMMIT;
PRAGMA foreign_keys = ON;
