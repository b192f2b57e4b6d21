-- Secrets every instance on this database shares, each made once by whichever instance needs
-- it first: the key that turns session IDs into listed handles and keys the console's CSRF
-- tokens, so that a handle or a console form made by one instance is accepted by every other.
CREATE TABLE server_secrets (
    name  TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
);
