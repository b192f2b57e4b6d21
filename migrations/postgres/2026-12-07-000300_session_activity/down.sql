ALTER TABLE sessions ADD COLUMN last_activity TIMESTAMP;
UPDATE sessions s SET last_activity = a.last_activity FROM session_activity a
    WHERE a.session_id = s.session_id;
UPDATE sessions SET last_activity = created_at WHERE last_activity IS NULL;
ALTER TABLE sessions ALTER COLUMN last_activity SET NOT NULL;
DROP INDEX sessions_by_client_type;
DROP INDEX sessions_by_location;
CREATE INDEX sessions_by_client_type ON sessions (client_type, created_at, session_id) INCLUDE (last_activity);
CREATE INDEX sessions_by_location ON sessions (location, created_at, session_id) INCLUDE (last_activity);
CREATE INDEX sessions_by_last_activity ON sessions (last_activity, session_id);
DROP TABLE session_activity;
