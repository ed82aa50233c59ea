-- E-mail notifications (#18): what each user chose to receive, and the outbox of mails,
-- queued in the transaction that records the event (one row per event and recipient).
CREATE TABLE mail_preferences (
    user_id     TEXT PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    -- ',type,type,' (commas around each, so a LIKE finds one); '' for none.
    events      TEXT NOT NULL,
    digest      INTEGER NOT NULL DEFAULT 0,
    digest_hour INTEGER NOT NULL DEFAULT 8,
    updated_at  INTEGER NOT NULL
);

CREATE TABLE mail_outbox (
    -- '<event id>:<user id>': one mail per event and recipient, whoever queues it.
    id          TEXT PRIMARY KEY,
    event_id    TEXT NOT NULL REFERENCES events(id) ON DELETE CASCADE,
    user_id     TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    account_id  TEXT NOT NULL,
    event_type  TEXT NOT NULL,
    -- 1: waits for the recipient's daily digest (next_at is its hour).
    digest      INTEGER NOT NULL,
    status      TEXT NOT NULL,
    attempts    INTEGER NOT NULL DEFAULT 0,
    next_at     INTEGER NOT NULL,
    -- Not accepted by then: failed (stale news is not sent late).
    give_up_at  INTEGER NOT NULL,
    lease_owner TEXT,
    lease_until INTEGER,
    last_error  TEXT,
    sent_at     INTEGER,
    created_at  INTEGER NOT NULL
);
CREATE INDEX mail_outbox_due ON mail_outbox (next_at) WHERE status = 'pending';
CREATE INDEX mail_outbox_by_user ON mail_outbox (user_id, account_id, created_at DESC);
