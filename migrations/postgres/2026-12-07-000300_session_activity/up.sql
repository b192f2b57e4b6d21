-- Last activity moves out of `sessions` into a narrow table of its own. It is the one column
-- written all the time (every renewal, in the background flush), and in `sessions` each write
-- copied the wide row and added an entry to all six of its indexes (last_activity was indexed,
-- so no update could be HOT) and left the old version behind for vacuum. Here a renewal
-- writes one short row version and two index entries (the key and the one index expiry walks),
-- with room left on each page (fillfactor) and vacuum kept close behind the churn. Every
-- session keeps its last activity: the rows are copied before the column goes.
CREATE TABLE session_activity (
    session_id    TEXT COLLATE "C" PRIMARY KEY NOT NULL
                  REFERENCES sessions (session_id) ON DELETE CASCADE,
    last_activity TIMESTAMP NOT NULL
) WITH (
    fillfactor = 70,
    autovacuum_vacuum_scale_factor = 0.02,
    autovacuum_analyze_scale_factor = 0.05
);
INSERT INTO session_activity (session_id, last_activity)
    SELECT session_id, last_activity FROM sessions;
-- The removal of expired sessions walks this index from the last key it deleted.
CREATE INDEX session_activity_by_time ON session_activity (last_activity, session_id);

-- The console's filter indexes no longer carry last activity.
DROP INDEX sessions_by_last_activity;
DROP INDEX sessions_by_client_type;
DROP INDEX sessions_by_location;
CREATE INDEX sessions_by_client_type ON sessions (client_type, created_at, session_id);
CREATE INDEX sessions_by_location ON sessions (location, created_at, session_id);
ALTER TABLE sessions DROP COLUMN last_activity;
