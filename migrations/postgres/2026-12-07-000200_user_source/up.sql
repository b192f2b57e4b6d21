-- Where a user's password is checked: `local` (the Argon2id hash here) or `directory` (a bind
-- as `dn`, no hash stored).
ALTER TABLE users
    ADD COLUMN source TEXT NOT NULL DEFAULT 'local' CHECK (source IN ('local', 'directory')),
    ADD COLUMN dn TEXT,
    ALTER COLUMN password_hash DROP NOT NULL,
    ADD CONSTRAINT users_local_have_a_hash CHECK (source = 'directory' OR password_hash IS NOT NULL);
