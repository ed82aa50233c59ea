-- People in several accounts (issue #13). A user row is a person (email, password, second
-- factor); a membership is their role in one account. `users.account_id` / `users.role` stay as
-- the person's home membership (the account a sign-in opens first).
CREATE TABLE memberships (
    user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    account_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    role       TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (user_id, account_id)
);
CREATE INDEX memberships_by_account ON memberships (account_id);
INSERT INTO memberships (user_id, account_id, role, created_at)
    SELECT id, account_id, role, created_at FROM users WHERE account_id IS NOT NULL;

-- The account a session or an API token acts in (NULL: the person's home account).
ALTER TABLE sessions ADD COLUMN account_id TEXT;
ALTER TABLE api_tokens ADD COLUMN account_id TEXT;

-- An owner's invitation to join their account, accepted by the person it names: adding someone
-- never reveals whether their email is already known elsewhere. The token only as its SHA-256.
CREATE TABLE invitations (
    id          TEXT PRIMARY KEY,
    token_hash  TEXT NOT NULL UNIQUE,
    account_id  TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    email       TEXT NOT NULL,
    role        TEXT NOT NULL,
    invited_by  TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    accepted_at INTEGER
);
CREATE INDEX invitations_by_account ON invitations (account_id);
