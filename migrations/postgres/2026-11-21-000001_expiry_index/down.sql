DROP INDEX sessions_by_last_activity;
CREATE INDEX sessions_by_last_activity ON sessions (last_activity);
