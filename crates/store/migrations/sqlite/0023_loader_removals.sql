-- Issue #15: the loader's removal from an org, kept beside the deployments' history instead of
-- rewriting it: the last removal per system × environment × connection. An org's loader state
-- is "removed" while this is newer than its last deployment with the loader.
CREATE TABLE loader_removals (
    account_id     TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    system_id      TEXT NOT NULL REFERENCES systems(id) ON DELETE CASCADE,
    environment_id TEXT NOT NULL,
    connection_id  TEXT NOT NULL,
    removed_at     INTEGER NOT NULL,
    removed_by     TEXT NOT NULL,
    PRIMARY KEY (system_id, environment_id, connection_id)
);
