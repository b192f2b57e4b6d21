DROP TRIGGER sessions_log_ends;
DROP TABLE session_ends;
