-- The removal of expired sessions walks this index from the last key it deleted, so it must
-- order ties on last_activity too.
DROP INDEX sessions_by_last_activity;
CREATE INDEX sessions_by_last_activity ON sessions (last_activity, session_id);
