-- The table's filters (#16) counted without reading rows (#17): how many connections an account
-- has in each combination of the filtered columns (at most 2 × 3 × 2 × 3 = 36 rows an account),
-- kept by triggers, so "1–50 of 333,334" with filters costs what it costs without.
CREATE TABLE connection_group_counts (
    account_id  TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    legacy      INTEGER NOT NULL,
    status      TEXT NOT NULL,
    org_type    TEXT NOT NULL,
    auth_method TEXT NOT NULL,
    n           INTEGER NOT NULL,
    PRIMARY KEY (account_id, legacy, status, org_type, auth_method)
);
INSERT INTO connection_group_counts (account_id, legacy, status, org_type, auth_method, n)
    SELECT account_id, legacy, status, org_type, auth_method, COUNT(*) FROM connections
    GROUP BY account_id, legacy, status, org_type, auth_method;
CREATE TRIGGER connections_group_insert AFTER INSERT ON connections BEGIN
    INSERT INTO connection_group_counts (account_id, legacy, status, org_type, auth_method, n)
        VALUES (new.account_id, new.legacy, new.status, new.org_type, new.auth_method, 1)
        ON CONFLICT (account_id, legacy, status, org_type, auth_method) DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER connections_group_delete AFTER DELETE ON connections BEGIN
    UPDATE connection_group_counts SET n = n - 1
        WHERE account_id = old.account_id AND legacy = old.legacy AND status = old.status
        AND org_type = old.org_type AND auth_method = old.auth_method;
END;
CREATE TRIGGER connections_group_update AFTER UPDATE OF legacy, status, org_type, auth_method ON connections
WHEN old.legacy IS NOT new.legacy OR old.status IS NOT new.status OR old.org_type IS NOT new.org_type
    OR old.auth_method IS NOT new.auth_method
BEGIN
    UPDATE connection_group_counts SET n = n - 1
        WHERE account_id = old.account_id AND legacy = old.legacy AND status = old.status
        AND org_type = old.org_type AND auth_method = old.auth_method;
    INSERT INTO connection_group_counts (account_id, legacy, status, org_type, auth_method, n)
        VALUES (new.account_id, new.legacy, new.status, new.org_type, new.auth_method, 1)
        ON CONFLICT (account_id, legacy, status, org_type, auth_method) DO UPDATE SET n = n + 1;
END;
