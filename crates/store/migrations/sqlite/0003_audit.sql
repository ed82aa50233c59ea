-- B4: who did what to which connection, user or setting, when, from where. Details never hold
-- secrets. Instance-wide events (operator actions) have no account.
CREATE TABLE audit_log (
    seq          INTEGER PRIMARY KEY,
    account_id   TEXT REFERENCES accounts(id) ON DELETE CASCADE,
    at           INTEGER NOT NULL,
    actor        TEXT NOT NULL,
    actor_kind   TEXT NOT NULL,
    action       TEXT NOT NULL,
    target_kind  TEXT NOT NULL,
    target_id    TEXT,
    target_label TEXT,
    detail       TEXT,
    remote_addr  TEXT
);
CREATE INDEX audit_by_account ON audit_log (account_id, seq DESC);
