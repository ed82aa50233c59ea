-- Notifications (#18): events written in the same transaction as the change that caused them,
-- and the outbox of their deliveries to each account's webhook endpoints.
CREATE TABLE events (
    id         TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    type       TEXT NOT NULL,
    at         INTEGER NOT NULL,
    -- The exact body every endpoint receives (signed as these bytes).
    payload    TEXT NOT NULL
);
CREATE INDEX events_by_account ON events (account_id, id DESC);

CREATE TABLE webhooks (
    id              TEXT PRIMARY KEY,
    account_id      TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    url             TEXT NOT NULL,
    description     TEXT NOT NULL DEFAULT '',
    -- ',type,type,' (commas around each, so a LIKE finds one); '' for every type.
    events          TEXT NOT NULL DEFAULT '',
    enabled         INTEGER NOT NULL DEFAULT 1,
    disabled_reason TEXT,
    failing_since   INTEGER,
    created_at      INTEGER NOT NULL,
    created_by      TEXT NOT NULL
);
CREATE INDEX webhooks_by_account ON webhooks (account_id);

-- Signing secrets, sealed: the current one (expires_at NULL) and, after a rotation, the
-- previous one until it expires; a delivery is signed with each.
CREATE TABLE webhook_secrets (
    id         TEXT PRIMARY KEY,
    webhook_id TEXT NOT NULL REFERENCES webhooks(id) ON DELETE CASCADE,
    secret     TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER
);
CREATE INDEX webhook_secrets_by_webhook ON webhook_secrets (webhook_id);

CREATE TABLE webhook_deliveries (
    id            TEXT PRIMARY KEY,
    webhook_id    TEXT NOT NULL REFERENCES webhooks(id) ON DELETE CASCADE,
    account_id    TEXT NOT NULL,
    event_id      TEXT NOT NULL REFERENCES events(id) ON DELETE CASCADE,
    event_type    TEXT NOT NULL,
    status        TEXT NOT NULL,
    attempts      INTEGER NOT NULL DEFAULT 0,
    next_at       INTEGER NOT NULL,
    -- Retries stop once a failure would be retried after this.
    give_up_at    INTEGER NOT NULL,
    lease_owner   TEXT,
    lease_until   INTEGER,
    last_status   INTEGER,
    last_latency  INTEGER,
    last_response TEXT,
    delivered_at  INTEGER,
    created_at    INTEGER NOT NULL,
    UNIQUE (webhook_id, event_id)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_at) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_by_webhook ON webhook_deliveries (webhook_id, created_at DESC);

CREATE TABLE webhook_attempts (
    delivery_id TEXT NOT NULL REFERENCES webhook_deliveries(id) ON DELETE CASCADE,
    at          INTEGER NOT NULL,
    status      INTEGER,
    latency     INTEGER NOT NULL,
    response    TEXT NOT NULL
);
CREATE INDEX webhook_attempts_by_delivery ON webhook_attempts (delivery_id, at);
