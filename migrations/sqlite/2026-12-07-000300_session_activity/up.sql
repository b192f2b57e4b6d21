-- Last activity moves out of `sessions` into a narrow table of its own. It is the one column
-- written all the time (every renewal, in the background flush), and in `sessions` each write
-- rewrote the wide row and four B-trees (the row itself, the expiry index and two console
-- indexes that carried it). Here a renewal rewrites one short row and the one index expiry
-- walks. Every session keeps its last activity: the rows are copied before the column goes.
CREATE TABLE session_activity (
    session_id    TEXT PRIMARY KEY NOT NULL REFERENCES sessions (session_id) ON DELETE CASCADE,
    last_activity TIMESTAMP NOT NULL
) WITHOUT ROWID;
INSERT INTO session_activity (session_id, last_activity)
    SELECT session_id, last_activity FROM sessions;
-- The removal of expired sessions walks this index from the last key it deleted.
CREATE INDEX session_activity_by_time ON session_activity (last_activity, session_id);

-- The console's filter indexes no longer carry last activity: "active or expired?" is one
-- primary-key read of the narrow table per session passed over.
DROP INDEX sessions_by_last_activity;
DROP INDEX sessions_by_client_type;
DROP INDEX sessions_by_location;
CREATE INDEX sessions_by_client_type ON sessions (client_type, created_at, session_id);
CREATE INDEX sessions_by_location ON sessions (location, created_at, session_id);
ALTER TABLE sessions DROP COLUMN last_activity;
