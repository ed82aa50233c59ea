-- A search with the health filter (#17): "Logged out, org42" at 1,000,000 connections found
-- 22,200 rows holding the term and kept the 1,110 Logged out ones. A trigram index over each
-- unhealthy status alone finds those directly (a twentieth of the rows each, in a healthy
-- fleet far fewer); the planner takes it when the query names that status.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm') THEN
        EXECUTE 'CREATE INDEX connections_search_logged_out ON connections USING gin (search_text gin_trgm_ops) WHERE status = ''logged_out''';
        EXECUTE 'CREATE INDEX connections_search_not_available ON connections USING gin (search_text gin_trgm_ops) WHERE status = ''not_available''';
    END IF;
END
$$;
