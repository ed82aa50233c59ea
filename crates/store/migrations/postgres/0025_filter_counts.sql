-- The table's filters (#16) counted without reading rows (#17); the same as SQLite's 0031:
-- how many connections an account has in each combination of the filtered columns (at most
-- 36 rows an account), kept by a trigger.
-- Writes from instances still running meanwhile wait, so the first counts miss none.
LOCK TABLE connections IN SHARE ROW EXCLUSIVE MODE;
CREATE TABLE connection_group_counts (
    account_id  TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    legacy      BIGINT NOT NULL,
    status      TEXT NOT NULL,
    org_type    TEXT NOT NULL,
    auth_method TEXT NOT NULL,
    n           BIGINT NOT NULL,
    PRIMARY KEY (account_id, legacy, status, org_type, auth_method)
);
INSERT INTO connection_group_counts (account_id, legacy, status, org_type, auth_method, n)
    SELECT account_id, legacy, status, org_type, auth_method, COUNT(*) FROM connections
    GROUP BY account_id, legacy, status, org_type, auth_method;
CREATE FUNCTION connection_group_add(a TEXT, l BIGINT, s TEXT, o TEXT, m TEXT, d BIGINT) RETURNS void
LANGUAGE sql AS $$
    INSERT INTO connection_group_counts (account_id, legacy, status, org_type, auth_method, n)
        VALUES (a, l, s, o, m, d)
        ON CONFLICT (account_id, legacy, status, org_type, auth_method)
        DO UPDATE SET n = connection_group_counts.n + d;
$$;
CREATE FUNCTION connections_group_count() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM connection_group_add(NEW.account_id, NEW.legacy, NEW.status, NEW.org_type, NEW.auth_method, 1);
    ELSIF TG_OP = 'DELETE' THEN
        PERFORM connection_group_add(OLD.account_id, OLD.legacy, OLD.status, OLD.org_type, OLD.auth_method, -1);
    ELSIF (OLD.legacy, OLD.status, OLD.org_type, OLD.auth_method)
        IS DISTINCT FROM (NEW.legacy, NEW.status, NEW.org_type, NEW.auth_method) THEN
        -- Two counters, always in the same order, so two changes moving connections between
        -- the same two groups in opposite directions never wait on each other in a cycle.
        IF (OLD.legacy, OLD.status, OLD.org_type, OLD.auth_method) < (NEW.legacy, NEW.status, NEW.org_type, NEW.auth_method) THEN
            PERFORM connection_group_add(OLD.account_id, OLD.legacy, OLD.status, OLD.org_type, OLD.auth_method, -1);
            PERFORM connection_group_add(NEW.account_id, NEW.legacy, NEW.status, NEW.org_type, NEW.auth_method, 1);
        ELSE
            PERFORM connection_group_add(NEW.account_id, NEW.legacy, NEW.status, NEW.org_type, NEW.auth_method, 1);
            PERFORM connection_group_add(OLD.account_id, OLD.legacy, OLD.status, OLD.org_type, OLD.auth_method, -1);
        END IF;
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER connections_group_count AFTER INSERT OR DELETE OR UPDATE OF legacy, status, org_type, auth_method
    ON connections FOR EACH ROW EXECUTE FUNCTION connections_group_count();
