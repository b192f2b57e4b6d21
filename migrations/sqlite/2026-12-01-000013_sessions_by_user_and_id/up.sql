-- Ending all of a user's sessions walks this index from the last ID it ended, in batches, so it
-- must order a user's sessions by ID.
DROP INDEX sessions_by_user;
CREATE INDEX sessions_by_user ON sessions (user_id, session_id);
