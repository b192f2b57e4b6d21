-- The change log of ended sessions that every instance reads to drop them from its cache
-- (SPEC 3, revocation). A trigger fills it in the transaction that deletes the session, so every
-- writer is covered: this instance, another one, the CLI. AUTOINCREMENT: a sequence number is
-- never reused, even once the log has been trimmed empty, so a reader's position stays valid.
CREATE TABLE session_ends (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id TEXT NOT NULL,
    ended_at   TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE INDEX session_ends_by_time ON session_ends (ended_at);

CREATE TRIGGER sessions_log_ends AFTER DELETE ON sessions
BEGIN
    INSERT INTO session_ends (session_id) VALUES (OLD.session_id);
END;

-- A first row, so that the log is never empty: trimming always keeps the newest row, and a
-- reader's position is always a row it can check is still there.
INSERT INTO session_ends (session_id) VALUES ('');
