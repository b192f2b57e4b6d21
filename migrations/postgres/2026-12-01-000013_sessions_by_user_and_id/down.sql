DROP INDEX sessions_by_user;
CREATE INDEX sessions_by_user ON sessions (user_id);
