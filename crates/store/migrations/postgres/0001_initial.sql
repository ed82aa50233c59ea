-- Lightbridge on PostgreSQL: the same tables as the SQLite migrations 0001–0008, in
-- PostgreSQL's dialect. Times are Unix milliseconds (BIGINT); flags are 0/1 BIGINTs so both
-- stores read rows the same way.

CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE accounts (
    id                 TEXT PRIMARY KEY,
    name               TEXT NOT NULL,
    connectors_enabled BIGINT NOT NULL DEFAULT 0,
    created_at         BIGINT NOT NULL
);

-- One row per Salesforce connection, new and legacy together (F6). Secrets are sealed by the
-- vault (AES-256-GCM, bound to the row id and column name).
CREATE TABLE connections (
    seq               BIGSERIAL PRIMARY KEY,
    id                TEXT NOT NULL UNIQUE,
    account_id        TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    legacy            BIGINT NOT NULL,
    name              TEXT,
    system_id         TEXT,
    environment_id    TEXT,
    active            BIGINT NOT NULL DEFAULT 1,
    org_type          TEXT NOT NULL,
    login_host        TEXT NOT NULL,
    auth_method       TEXT NOT NULL,
    consumer_key      TEXT NOT NULL,
    jwt_username      TEXT,
    org_id            TEXT,
    org_name          TEXT,
    instance_url      TEXT,
    sf_user_id        TEXT,
    sf_username       TEXT,
    sf_email          TEXT,
    status            TEXT NOT NULL,
    status_detail     TEXT,
    status_checked_at BIGINT,
    created_at        BIGINT NOT NULL,
    created_by        TEXT,
    modified_at       BIGINT NOT NULL,
    modified_by       TEXT,
    consumer_secret   TEXT,
    private_key       TEXT,
    access_token      TEXT,
    refresh_token     TEXT,
    -- Bumped on every token change, so a refresh can tell whether another one won the race.
    token_version     BIGINT NOT NULL DEFAULT 0,
    -- Lower-cased org name and emails: what search (F7) matches against.
    search_text       TEXT NOT NULL DEFAULT ''
);

CREATE UNIQUE INDEX connections_unique_name ON connections (account_id, lower(name)) WHERE name IS NOT NULL;
CREATE UNIQUE INDEX connections_unique_legacy_slot ON connections (account_id, system_id, environment_id) WHERE legacy = 1;
CREATE INDEX connections_by_created ON connections (account_id, created_at, id);
CREATE INDEX connections_by_modified ON connections (account_id, modified_at, id);
CREATE INDEX connections_by_org_name ON connections (account_id, lower(org_name), id);
CREATE INDEX connections_by_check ON connections (status_checked_at);

-- Substring search (F7): a trigram index when pg_trgm can be installed (it is a trusted
-- extension from PostgreSQL 13, so a database owner may); without it search scans the account.
DO $$
BEGIN
    CREATE EXTENSION IF NOT EXISTS pg_trgm;
    EXECUTE 'CREATE INDEX connections_search ON connections USING gin (search_text gin_trgm_ops)';
EXCEPTION WHEN OTHERS THEN
    RAISE NOTICE 'pg_trgm is not available (%): search scans the account''s connections', SQLERRM;
END
$$;

-- How many connections each account has: the table's unfiltered total without counting rows.
CREATE TABLE account_connection_counts (
    account_id TEXT PRIMARY KEY REFERENCES accounts(id) ON DELETE CASCADE,
    n          BIGINT NOT NULL
);
CREATE FUNCTION connections_count() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO account_connection_counts (account_id, n) VALUES (NEW.account_id, 1)
            ON CONFLICT (account_id) DO UPDATE SET n = account_connection_counts.n + 1;
        RETURN NEW;
    ELSE
        UPDATE account_connection_counts SET n = n - 1 WHERE account_id = OLD.account_id;
        RETURN OLD;
    END IF;
END
$$;
CREATE TRIGGER connections_count_insert AFTER INSERT ON connections FOR EACH ROW EXECUTE FUNCTION connections_count();
CREATE TRIGGER connections_count_delete AFTER DELETE ON connections FOR EACH ROW EXECUTE FUNCTION connections_count();

-- People who sign in, and the API tokens automation uses. The operator is instance-wide
-- (account_id NULL, role 'operator').
CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    account_id    TEXT REFERENCES accounts(id) ON DELETE CASCADE,
    email         TEXT NOT NULL,
    name          TEXT NOT NULL,
    role          TEXT NOT NULL,
    password_hash TEXT,
    created_at    BIGINT NOT NULL
);
CREATE UNIQUE INDEX users_unique_email ON users (lower(email));

-- Only a SHA-256 of each token is kept; the token is shown once, at creation.
CREATE TABLE api_tokens (
    id           TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    token_hash   TEXT NOT NULL UNIQUE,
    created_at   BIGINT NOT NULL,
    last_used_at BIGINT,
    revoked_at   BIGINT
);

-- OAuth sign-ins in flight (F1): single use, expiring, bound to who started them.
CREATE TABLE oauth_states (
    state_hash TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    payload    TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);

-- B4: who did what, when, from where. Details never hold secrets.
CREATE TABLE audit_log (
    seq          BIGSERIAL PRIMARY KEY,
    account_id   TEXT REFERENCES accounts(id) ON DELETE CASCADE,
    at           BIGINT NOT NULL,
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

-- Sessions of the Admin Center and API, shared by every instance: only a SHA-256 of the
-- session id is kept; each session has its own CSRF token.
CREATE TABLE sessions (
    id_hash    TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    csrf_token TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX sessions_by_expiry ON sessions (expires_at);

-- What content is published for (product.md §2): systems, and the account's environments.
CREATE TABLE systems (
    id         TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    name       TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX systems_unique_name ON systems (account_id, lower(name));

CREATE TABLE environments (
    id         TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    name       TEXT NOT NULL,
    built_in   BIGINT NOT NULL,
    position   BIGINT NOT NULL
);
CREATE UNIQUE INDEX environments_unique_name ON environments (account_id, lower(name));

-- Per-user settings of the Admin Center, e.g. the table's visible columns (F9).
CREATE TABLE user_preferences (
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    key     TEXT NOT NULL,
    value   TEXT NOT NULL,
    PRIMARY KEY (user_id, key)
);

-- Publishing (F3, B2). Bundles keep every release's bytes so it can be published again.
CREATE TABLE bundles (
    id         TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    sha256     TEXT NOT NULL,
    size       BIGINT NOT NULL,
    files      TEXT NOT NULL,
    bytes      BYTEA NOT NULL,
    created_at BIGINT NOT NULL,
    created_by TEXT NOT NULL
);
CREATE INDEX bundles_by_hash ON bundles (account_id, sha256);

CREATE TABLE bindings (
    account_id     TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    connection_id  TEXT NOT NULL REFERENCES connections(id) ON DELETE CASCADE,
    system_id      TEXT NOT NULL REFERENCES systems(id) ON DELETE CASCADE,
    environment_id TEXT NOT NULL REFERENCES environments(id) ON DELETE CASCADE,
    created_at     BIGINT NOT NULL,
    PRIMARY KEY (connection_id, system_id, environment_id)
);
CREATE INDEX bindings_by_slot ON bindings (account_id, system_id, environment_id);

CREATE TABLE deployments (
    seq            BIGSERIAL PRIMARY KEY,
    id             TEXT NOT NULL UNIQUE,
    account_id     TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    system_id      TEXT NOT NULL,
    environment_id TEXT NOT NULL,
    bundle_id      TEXT NOT NULL REFERENCES bundles(id),
    resource_name  TEXT NOT NULL,
    cache_control  TEXT NOT NULL,
    status         TEXT NOT NULL,
    created_at     BIGINT NOT NULL,
    created_by     TEXT NOT NULL,
    finished_at    BIGINT,
    redeploy_of    TEXT
);
CREATE INDEX deployments_by_account ON deployments (account_id, seq DESC);

-- One row per connection of a deployment. Instances claim pending rows (and running rows whose
-- lease expired: their instance died) with FOR UPDATE SKIP LOCKED.
CREATE TABLE deployment_targets (
    seq           BIGSERIAL UNIQUE,
    deployment_id TEXT NOT NULL REFERENCES deployments(id) ON DELETE CASCADE,
    connection_id TEXT NOT NULL,
    status        TEXT NOT NULL,
    attempts      BIGINT NOT NULL DEFAULT 0,
    action        TEXT,
    resource_id   TEXT,
    url           TEXT,
    error         TEXT,
    not_before    BIGINT NOT NULL DEFAULT 0,
    lease_owner   TEXT,
    lease_until   BIGINT,
    updated_at    BIGINT NOT NULL,
    PRIMARY KEY (deployment_id, connection_id)
);
CREATE INDEX targets_claimable ON deployment_targets (status, not_before);
CREATE INDEX targets_by_deployment_status ON deployment_targets (deployment_id, status);
