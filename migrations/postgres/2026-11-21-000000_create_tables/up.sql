-- Users, their rights and lock-out state.
CREATE TABLE users (
    user_id       TEXT PRIMARY KEY NOT NULL,
    password_hash TEXT NOT NULL,
    department    TEXT,
    disabled      BOOLEAN NOT NULL DEFAULT FALSE,
    admin_right   BOOLEAN NOT NULL DEFAULT FALSE,
    update_right  BOOLEAN NOT NULL DEFAULT FALSE,
    view_right    BOOLEAN NOT NULL DEFAULT FALSE,
    failed_logins INTEGER NOT NULL DEFAULT 0,
    locked_until  TIMESTAMP,
    created_at    TIMESTAMP NOT NULL
);

-- Stored sessions, active and expired-but-not-yet-removed.
CREATE TABLE sessions (
    session_id    TEXT COLLATE "C" PRIMARY KEY NOT NULL,
    user_id       TEXT NOT NULL REFERENCES users (user_id),
    client_type   TEXT NOT NULL,
    client_name   TEXT,
    host          TEXT,
    location      TEXT NOT NULL,
    created_at    TIMESTAMP NOT NULL,
    last_activity TIMESTAMP NOT NULL,
    created_by    TEXT
);
CREATE INDEX sessions_by_last_activity ON sessions (last_activity);
CREATE INDEX sessions_by_creation ON sessions (created_at, session_id);
CREATE INDEX sessions_by_user ON sessions (user_id);

-- Ended sessions, kept for the retention period.
CREATE TABLE session_history (
    session_id    TEXT COLLATE "C" PRIMARY KEY NOT NULL,
    user_id       TEXT NOT NULL,
    client_type   TEXT NOT NULL,
    client_name   TEXT,
    host          TEXT,
    location      TEXT NOT NULL,
    created_at    TIMESTAMP NOT NULL,
    last_activity TIMESTAMP NOT NULL,
    created_by    TEXT,
    ended_at      TIMESTAMP NOT NULL,
    end_reason    TEXT NOT NULL
);
CREATE INDEX session_history_by_end ON session_history (ended_at);
