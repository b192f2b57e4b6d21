DROP TRIGGER sessions_log_ends ON sessions;
DROP FUNCTION sessions_log_ends();
DROP TABLE session_ends;
