DELETE FROM sessions WHERE user_id IN (SELECT user_id FROM users WHERE password_hash IS NULL);
DELETE FROM users WHERE password_hash IS NULL;
ALTER TABLE users
    DROP CONSTRAINT users_local_have_a_hash,
    ALTER COLUMN password_hash SET NOT NULL,
    DROP COLUMN dn,
    DROP COLUMN source;
