-- A search with the health filter (#17), again: "Logged out, org42" at 1,000,000 connections
-- fetched the 2,400 rows holding the term's rarest trigrams among the connections not Logged
-- in (migration 0032), to keep the 1,200 Logged out ones, twice (the count and the page, 3 ms
-- each): the page's p95 sat at 9.4-11.9 ms against its 10 ms goal. One trigram index per status
-- holds only the rows of that status. (A status column in one index was tried: its eight
-- trigrams in 50,000 documents made the search slower.)
DROP TRIGGER connections_unhealthy_insert;
DROP TRIGGER connections_unhealthy_delete;
DROP TRIGGER connections_unhealthy_update;
DROP TABLE connections_search_unhealthy;

CREATE VIRTUAL TABLE connections_search_logged_out USING fts5(
    search_text,
    content = 'connections',
    content_rowid = 'seq',
    tokenize = 'trigram'
);
INSERT INTO connections_search_logged_out (rowid, search_text)
    SELECT seq, search_text FROM connections WHERE status = 'logged_out';
CREATE TRIGGER connections_logged_out_insert AFTER INSERT ON connections WHEN new.status = 'logged_out' BEGIN
    INSERT INTO connections_search_logged_out (rowid, search_text) VALUES (new.seq, new.search_text);
END;
CREATE TRIGGER connections_logged_out_delete AFTER DELETE ON connections WHEN old.status = 'logged_out' BEGIN
    INSERT INTO connections_search_logged_out (connections_search_logged_out, rowid, search_text) VALUES ('delete', old.seq, old.search_text);
END;
CREATE TRIGGER connections_logged_out_update AFTER UPDATE OF status, search_text ON connections
WHEN old.status = 'logged_out' OR new.status = 'logged_out'
BEGIN
    INSERT INTO connections_search_logged_out (connections_search_logged_out, rowid, search_text)
        SELECT 'delete', old.seq, old.search_text WHERE old.status = 'logged_out';
    INSERT INTO connections_search_logged_out (rowid, search_text)
        SELECT new.seq, new.search_text WHERE new.status = 'logged_out';
END;

CREATE VIRTUAL TABLE connections_search_not_available USING fts5(
    search_text,
    content = 'connections',
    content_rowid = 'seq',
    tokenize = 'trigram'
);
INSERT INTO connections_search_not_available (rowid, search_text)
    SELECT seq, search_text FROM connections WHERE status = 'not_available';
CREATE TRIGGER connections_not_available_insert AFTER INSERT ON connections WHEN new.status = 'not_available' BEGIN
    INSERT INTO connections_search_not_available (rowid, search_text) VALUES (new.seq, new.search_text);
END;
CREATE TRIGGER connections_not_available_delete AFTER DELETE ON connections WHEN old.status = 'not_available' BEGIN
    INSERT INTO connections_search_not_available (connections_search_not_available, rowid, search_text) VALUES ('delete', old.seq, old.search_text);
END;
CREATE TRIGGER connections_not_available_update AFTER UPDATE OF status, search_text ON connections
WHEN old.status = 'not_available' OR new.status = 'not_available'
BEGIN
    INSERT INTO connections_search_not_available (connections_search_not_available, rowid, search_text)
        SELECT 'delete', old.seq, old.search_text WHERE old.status = 'not_available';
    INSERT INTO connections_search_not_available (rowid, search_text)
        SELECT new.seq, new.search_text WHERE new.status = 'not_available';
END;
