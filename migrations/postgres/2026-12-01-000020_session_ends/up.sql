-- The change log of ended sessions that every instance reads to drop them from its cache
-- (SPEC 3, revocation). A trigger fills it in the transaction that deletes the sessions, so every
-- writer is covered: this instance, another one, the CLI.
CREATE TABLE session_ends (
    seq        BIGSERIAL PRIMARY KEY,
    session_id TEXT NOT NULL,
    ended_at   TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX session_ends_by_time ON session_ends (ended_at);

-- One call per DELETE statement, not per row: a batch of thousands of expired sessions is one
-- INSERT ... SELECT and one notification. Sequence values are handed out before commit, so two
-- transactions could commit out of seq order and a reader past the later one would never see
-- the earlier; the transaction-scoped advisory lock makes appenders take their seqs one
-- transaction at a time, in commit order. It is taken at the end of the DELETE statement, and
-- every transaction that deletes sessions does nothing after it that waits on another (history
-- inserts, the new session's insert, the user's own locked row), so it cannot deadlock.
CREATE FUNCTION sessions_log_ends() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM gone) THEN
        RETURN NULL;
    END IF;
    PERFORM pg_advisory_xact_lock(5153170012);
    INSERT INTO session_ends (session_id) SELECT session_id FROM gone;
    PERFORM pg_notify('session_ends', '');
    RETURN NULL;
END
$$;

CREATE TRIGGER sessions_log_ends AFTER DELETE ON sessions
    REFERENCING OLD TABLE AS gone
    FOR EACH STATEMENT EXECUTE FUNCTION sessions_log_ends();

-- A first row, so that the log is never empty: trimming always keeps the newest row, and a
-- reader's position is always a row it can check is still there.
INSERT INTO session_ends (session_id) VALUES ('');
