-- People who sign in, and the API tokens automation uses. The operator is instance-wide
-- (account_id NULL, role 'operator').
CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    account_id    TEXT REFERENCES accounts(id) ON DELETE CASCADE,
    email         TEXT NOT NULL,
    name          TEXT NOT NULL,
    role          TEXT NOT NULL,
    password_hash TEXT,
    created_at    INTEGER NOT NULL
);
CREATE UNIQUE INDEX users_unique_email ON users (email COLLATE NOCASE);

-- Only a SHA-256 of each token is kept; the token is shown once, at creation.
CREATE TABLE api_tokens (
    id           TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    token_hash   TEXT NOT NULL UNIQUE,
    created_at   INTEGER NOT NULL,
    last_used_at INTEGER,
    revoked_at   INTEGER
);

-- OAuth sign-ins in flight (F1): single use, expiring, bound to who started them. The payload
-- (PKCE verifier and the connection being made) is sealed.
CREATE TABLE oauth_states (
    state_hash TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    payload    TEXT NOT NULL,
    expires_at INTEGER NOT NULL
);
