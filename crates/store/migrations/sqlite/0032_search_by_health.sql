-- A search with the health filter (#17): "Logged out, org42" at 1,000,000 connections found
-- 22,200 rows holding the term and kept the 1,110 Logged out ones. A second trigram index over
-- the connections that are not Logged in finds those among a tenth of the rows (in a healthy
-- fleet far fewer); a search with the Logged out or Not available filter looks there.
CREATE VIRTUAL TABLE connections_search_unhealthy USING fts5(
    search_text,
    content = 'connections',
    content_rowid = 'seq',
    tokenize = 'trigram'
);
INSERT INTO connections_search_unhealthy (rowid, search_text)
    SELECT seq, search_text FROM connections WHERE status != 'logged_in';
CREATE TRIGGER connections_unhealthy_insert AFTER INSERT ON connections WHEN new.status != 'logged_in' BEGIN
    INSERT INTO connections_search_unhealthy (rowid, search_text) VALUES (new.seq, new.search_text);
END;
CREATE TRIGGER connections_unhealthy_delete AFTER DELETE ON connections WHEN old.status != 'logged_in' BEGIN
    INSERT INTO connections_search_unhealthy (connections_search_unhealthy, rowid, search_text)
        VALUES ('delete', old.seq, old.search_text);
END;
CREATE TRIGGER connections_unhealthy_update AFTER UPDATE OF status, search_text ON connections
WHEN old.status != 'logged_in' OR new.status != 'logged_in'
BEGIN
    INSERT INTO connections_search_unhealthy (connections_search_unhealthy, rowid, search_text)
        SELECT 'delete', old.seq, old.search_text WHERE old.status != 'logged_in';
    INSERT INTO connections_search_unhealthy (rowid, search_text)
        SELECT new.seq, new.search_text WHERE new.status != 'logged_in';
END;
-- A short search (one or two characters, by prefix) with the health filter walked the prefix
-- index through the healthy rows: 35 ms for "Logged out, o". The same prefixes over the
-- connections not Logged in, with their status, answer it from the index alone.
CREATE INDEX connections_prefix_org_name_unhealthy
    ON connections (account_id, COALESCE(org_name, '') COLLATE NOCASE, status) WHERE status != 'logged_in';
CREATE INDEX connections_prefix_created_by_unhealthy
    ON connections (account_id, COALESCE(created_by, '') COLLATE NOCASE, status) WHERE status != 'logged_in';
CREATE INDEX connections_prefix_modified_by_unhealthy
    ON connections (account_id, COALESCE(modified_by, '') COLLATE NOCASE, status) WHERE status != 'logged_in';
