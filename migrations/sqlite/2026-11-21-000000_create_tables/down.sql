DROP TABLE session_history;
DROP TABLE sessions;
DROP TABLE users;
