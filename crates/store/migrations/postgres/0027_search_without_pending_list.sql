-- The trigram indexes take each change at once (#17). With GIN's default `fastupdate`, new
-- entries wait in a pending list of up to 4 MB until a vacuum or the list fills, and every
-- search reads that whole list: after 200,000 inserts at 1,000,000 connections "Logged out,
-- org42" took 222 ms instead of 1.4. PostgreSQL's documentation recommends turning it off where
-- steady response time matters more than the speed of updates; connections change rarely.
DO $$
DECLARE
    name TEXT;
BEGIN
    FOREACH name IN ARRAY ARRAY['connections_search', 'connections_search_logged_out', 'connections_search_not_available'] LOOP
        IF EXISTS (SELECT 1 FROM pg_class WHERE relname = name AND relkind = 'i') THEN
            EXECUTE format('ALTER INDEX %I SET (fastupdate = off)', name);
            PERFORM gin_clean_pending_list(name::regclass);
        END IF;
    END LOOP;
END
$$;
