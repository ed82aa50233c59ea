-- Two-factor sign-in (issue #13). A person's TOTP secret, sealed by the vault and bound to the
-- user id; `confirmed_at` stays NULL until the first code proves the authenticator has it.
-- `last_step` is the last 30-second step a code was accepted for, so a code works only once.
CREATE TABLE two_factor (
    user_id      TEXT PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    secret       TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    confirmed_at INTEGER,
    last_step    INTEGER NOT NULL DEFAULT 0
);

-- Recovery codes by their SHA-256; each works once.
CREATE TABLE recovery_codes (
    user_id   TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    code_hash TEXT NOT NULL,
    used_at   INTEGER,
    PRIMARY KEY (user_id, code_hash)
);

-- A sign-in half done (the password was right and the second factor is awaited), by its id's
-- SHA-256; the payload is sealed and bound to that hash.
CREATE TABLE pending_sign_ins (
    id_hash    TEXT PRIMARY KEY,
    kind       TEXT NOT NULL,
    payload    TEXT NOT NULL,
    expires_at INTEGER NOT NULL
);

-- The owner's rule: every password user of the account signs in with a second factor.
ALTER TABLE accounts ADD COLUMN two_factor_required INTEGER NOT NULL DEFAULT 0;
