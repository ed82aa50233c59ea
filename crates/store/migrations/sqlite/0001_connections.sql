-- Settings of the instance, e.g. the master key's fingerprint.
CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE accounts (
    id                 TEXT PRIMARY KEY,
    name               TEXT NOT NULL,
    connectors_enabled INTEGER NOT NULL DEFAULT 0,
    created_at         INTEGER NOT NULL
);

-- One row per Salesforce connection, new and legacy together (F6). Secrets are sealed by the
-- vault (AES-256-GCM, bound to the row id and column name); times are Unix milliseconds.
CREATE TABLE connections (
    -- A stable integer key (VACUUM never renumbers an INTEGER PRIMARY KEY): the search index
    -- below refers to rows by it.
    seq               INTEGER PRIMARY KEY,
    id                TEXT NOT NULL UNIQUE,
    account_id        TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    legacy            INTEGER NOT NULL,
    name              TEXT,
    system_id         TEXT,
    environment_id    TEXT,
    active            INTEGER NOT NULL DEFAULT 1,
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
    status_checked_at INTEGER,
    created_at        INTEGER NOT NULL,
    created_by        TEXT,
    modified_at       INTEGER NOT NULL,
    modified_by       TEXT,
    consumer_secret   TEXT,
    private_key       TEXT,
    access_token      TEXT,
    refresh_token     TEXT,
    -- Bumped on every token change, so a refresh can tell whether another one won the race.
    token_version     INTEGER NOT NULL DEFAULT 0,
    -- Lower-cased org name and emails: what search (F7) matches against.
    search_text       TEXT NOT NULL DEFAULT ''
);

CREATE UNIQUE INDEX connections_unique_name ON connections (account_id, name COLLATE NOCASE) WHERE name IS NOT NULL;
CREATE UNIQUE INDEX connections_unique_legacy_slot ON connections (account_id, system_id, environment_id) WHERE legacy = 1;
CREATE INDEX connections_by_created ON connections (account_id, created_at, id);
CREATE INDEX connections_by_org_name ON connections (account_id, org_name COLLATE NOCASE, id);
CREATE INDEX connections_by_check ON connections (status_checked_at);

-- Substring search (F7) over the org name and emails: a trigram full-text index kept in step by
-- triggers. Terms of three characters or more use it; shorter ones scan.
CREATE VIRTUAL TABLE connections_search USING fts5(
    search_text,
    content = 'connections',
    content_rowid = 'seq',
    tokenize = 'trigram'
);
CREATE TRIGGER connections_search_insert AFTER INSERT ON connections BEGIN
    INSERT INTO connections_search (rowid, search_text) VALUES (new.seq, new.search_text);
END;
CREATE TRIGGER connections_search_delete AFTER DELETE ON connections BEGIN
    INSERT INTO connections_search (connections_search, rowid, search_text) VALUES ('delete', old.seq, old.search_text);
END;
CREATE TRIGGER connections_search_update AFTER UPDATE OF search_text ON connections BEGIN
    INSERT INTO connections_search (connections_search, rowid, search_text) VALUES ('delete', old.seq, old.search_text);
    INSERT INTO connections_search (rowid, search_text) VALUES (new.seq, new.search_text);
END;

-- How many connections each account has: the table's unfiltered total without counting rows.
CREATE TABLE account_connection_counts (
    account_id TEXT PRIMARY KEY REFERENCES accounts(id) ON DELETE CASCADE,
    n          INTEGER NOT NULL
);
CREATE TRIGGER connections_count_insert AFTER INSERT ON connections BEGIN
    INSERT INTO account_connection_counts (account_id, n) VALUES (new.account_id, 1)
        ON CONFLICT (account_id) DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER connections_count_delete AFTER DELETE ON connections BEGIN
    UPDATE account_connection_counts SET n = n - 1 WHERE account_id = old.account_id;
END;
