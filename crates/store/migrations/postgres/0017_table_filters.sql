-- The table's sorts and filters (#16). Every column of the table sorts, ties broken by id, and
-- each order has an index that serves it (a page reads 50 index entries, not the account's
-- rows). Sorting by a text column orders NULL as the empty text, case-insensitively: the
-- indexes follow those expressions exactly, as the queries write them.
DROP INDEX connections_by_org_name;
CREATE INDEX connections_by_org_name ON connections (account_id, lower(COALESCE(org_name, '')), id);
CREATE INDEX connections_by_id ON connections (account_id, id);
CREATE INDEX connections_by_org_type ON connections (account_id, org_type, id);
CREATE INDEX connections_by_created_by ON connections (account_id, lower(COALESCE(created_by, '')), id);
CREATE INDEX connections_by_modified_by ON connections (account_id, lower(COALESCE(modified_by, '')), id);
CREATE INDEX connections_by_status ON connections (account_id, status, id);
CREATE INDEX connections_by_activity ON connections (account_id, (1 - active), id);
-- Counting a filtered table reads this index alone (it holds every filtered column).
CREATE INDEX connections_by_filters ON connections (account_id, legacy, status, org_type, auth_method);
