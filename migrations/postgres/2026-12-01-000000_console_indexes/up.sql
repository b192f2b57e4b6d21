-- The console's lists are keyset pages: each filter it offers leads an index whose next columns
-- are the page order, so a page of a million sessions is an index seek, never a scan or a sort.
-- Sessions by user, client type or location, in creation order (the user one also serves
-- ending all of a user's sessions, as the index it replaces did). Last activity is included,
-- so that "active or expired?" is answered by an index-only scan: a count of the active
-- sessions of one client type then reads index entries only. (last_activity is indexed
-- already, so its updates were never HOT: including it costs no extra index writes.)
DROP INDEX sessions_by_user;
CREATE INDEX sessions_by_user ON sessions (user_id, created_at, session_id) INCLUDE (last_activity);
CREATE INDEX sessions_by_client_type ON sessions (client_type, created_at, session_id) INCLUDE (last_activity);
CREATE INDEX sessions_by_location ON sessions (location, created_at, session_id) INCLUDE (last_activity);
-- The history, newest first, alone or by user or by end reason; the key needs the ID for ties.
DROP INDEX session_history_by_end;
CREATE INDEX session_history_by_end ON session_history (ended_at, session_id);
CREATE INDEX session_history_by_user ON session_history (user_id, ended_at, session_id);
CREATE INDEX session_history_by_reason ON session_history (end_reason, ended_at, session_id);
