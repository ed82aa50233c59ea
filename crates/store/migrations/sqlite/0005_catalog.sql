-- What content is published for (product.md §2): systems, and the account's environments.
-- Legacy connectors (connections.legacy = 1) point at one system × environment each.
CREATE TABLE systems (
    id         TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    name       TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE UNIQUE INDEX systems_unique_name ON systems (account_id, name COLLATE NOCASE);

-- Production, Test and Sandbox are built in (created with the account); accounts may add more.
CREATE TABLE environments (
    id         TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    name       TEXT NOT NULL,
    built_in   INTEGER NOT NULL,
    position   INTEGER NOT NULL
);
CREATE UNIQUE INDEX environments_unique_name ON environments (account_id, name COLLATE NOCASE);

-- Accounts created before this migration get their built-in environments now.
INSERT INTO environments (id, account_id, name, built_in, position)
SELECT 'env_' || lower(hex(randomblob(16))), a.id, b.name, 1, b.position
FROM accounts a CROSS JOIN (SELECT 'Production' AS name, 0 AS position UNION ALL SELECT 'Test', 1 UNION ALL SELECT 'Sandbox', 2) b;
