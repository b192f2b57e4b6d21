ALTER TABLE sessions ADD COLUMN last_activity TIMESTAMP NOT NULL DEFAULT '1970-01-01 00:00:00';
UPDATE sessions SET last_activity = (
    SELECT a.last_activity FROM session_activity a WHERE a.session_id = sessions.session_id
) WHERE session_id IN (SELECT session_id FROM session_activity);
DROP INDEX sessions_by_client_type;
DROP INDEX sessions_by_location;
CREATE INDEX sessions_by_client_type ON sessions (client_type, created_at, session_id, last_activity);
CREATE INDEX sessions_by_location ON sessions (location, created_at, session_id, last_activity);
CREATE INDEX sessions_by_last_activity ON sessions (last_activity, session_id);
DROP TABLE session_activity;
