DROP INDEX session_history_by_reason;
DROP INDEX session_history_by_user;
DROP INDEX session_history_by_end;
CREATE INDEX session_history_by_end ON session_history (ended_at);
DROP INDEX sessions_by_location;
DROP INDEX sessions_by_client_type;
DROP INDEX sessions_by_user;
CREATE INDEX sessions_by_user ON sessions (user_id);
