-- Publishing (F3, B2). Bundles keep every release's bytes so it can be published again.
CREATE TABLE bundles (
    id         TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    sha256     TEXT NOT NULL,
    size       INTEGER NOT NULL,
    files      TEXT NOT NULL,
    bytes      BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    created_by TEXT NOT NULL
);
CREATE INDEX bundles_by_hash ON bundles (account_id, sha256);

-- Which new connections publish for a system × environment (legacy connectors are bound by
-- their own slot, and only while active).
CREATE TABLE bindings (
    account_id     TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    connection_id  TEXT NOT NULL REFERENCES connections(id) ON DELETE CASCADE,
    system_id      TEXT NOT NULL REFERENCES systems(id) ON DELETE CASCADE,
    environment_id TEXT NOT NULL REFERENCES environments(id) ON DELETE CASCADE,
    created_at     INTEGER NOT NULL,
    PRIMARY KEY (connection_id, system_id, environment_id)
);
CREATE INDEX bindings_by_slot ON bindings (account_id, system_id, environment_id);

CREATE TABLE deployments (
    seq            INTEGER PRIMARY KEY,
    id             TEXT NOT NULL UNIQUE,
    account_id     TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    system_id      TEXT NOT NULL,
    environment_id TEXT NOT NULL,
    bundle_id      TEXT NOT NULL REFERENCES bundles(id),
    resource_name  TEXT NOT NULL,
    cache_control  TEXT NOT NULL,
    status         TEXT NOT NULL,
    created_at     INTEGER NOT NULL,
    created_by     TEXT NOT NULL,
    finished_at    INTEGER,
    redeploy_of    TEXT
);
CREATE INDEX deployments_by_account ON deployments (account_id, seq DESC);

-- One row per connection of a deployment. A worker claims pending rows (and running rows
-- whose lease expired: their worker died) by setting lease_owner and lease_until; retries wait
-- until not_before. connection_id has no foreign key: history outlives a deleted connection.
CREATE TABLE deployment_targets (
    deployment_id TEXT NOT NULL REFERENCES deployments(id) ON DELETE CASCADE,
    connection_id TEXT NOT NULL,
    status        TEXT NOT NULL,
    attempts      INTEGER NOT NULL DEFAULT 0,
    action        TEXT,
    resource_id   TEXT,
    url           TEXT,
    error         TEXT,
    not_before    INTEGER NOT NULL DEFAULT 0,
    lease_owner   TEXT,
    lease_until   INTEGER,
    updated_at    INTEGER NOT NULL,
    PRIMARY KEY (deployment_id, connection_id)
);
CREATE INDEX targets_claimable ON deployment_targets (status, not_before);
