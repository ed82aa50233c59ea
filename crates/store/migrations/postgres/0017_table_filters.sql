-- The table's sorts and filters (#16). Sorting by a text column orders NULL as the empty text,
-- case-insensitively: the index on the account name follows that expression.
DROP INDEX connections_by_org_name;
CREATE INDEX connections_by_org_name ON connections (account_id, lower(COALESCE(org_name, '')), id);
-- Counting a filtered table reads this index alone (it holds every filtered column).
CREATE INDEX connections_by_filters ON connections (account_id, legacy, status, org_type, auth_method);
