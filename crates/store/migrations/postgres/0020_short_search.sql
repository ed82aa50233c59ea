-- Short searches (#17): one or two characters match the start of the org's name or of an email,
-- a byte-wise range on these (the table's other indexes use the database's collation, whose
-- order a prefix range cannot rely on).
CREATE INDEX connections_prefix_org_name ON connections (account_id, (lower(COALESCE(org_name, '')) COLLATE "C"));
CREATE INDEX connections_prefix_created_by ON connections (account_id, (lower(COALESCE(created_by, '')) COLLATE "C"));
CREATE INDEX connections_prefix_modified_by ON connections (account_id, (lower(COALESCE(modified_by, '')) COLLATE "C"));
