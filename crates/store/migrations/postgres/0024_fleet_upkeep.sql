-- Fleet upkeep (#17); the same as SQLite's 0030.
-- A scheduled drift scan of an account is claimed by one instance at a time, so each org is
-- asked once per interval however many instances share the database.
-- Writes from instances still running meanwhile wait (the prune and the triggers below).
LOCK TABLE connections IN SHARE ROW EXCLUSIVE MODE;
CREATE TABLE drift_scan_claims (
    account_id TEXT PRIMARY KEY REFERENCES accounts(id) ON DELETE CASCADE,
    owner TEXT NOT NULL,
    claimed_until BIGINT NOT NULL
);
-- Which of an account's connections reach an org: the drift scan's fallback connection, and
-- the pruning below (a million connections in one account must not be read for either).
CREATE INDEX connections_by_org ON connections (account_id, org_id);
-- What Lightbridge published in an org is forgotten with the account's last connection to it:
-- no scan can reach the org then, and a new connection starts without a baseline. (A
-- connection whose org facts are cleared keeps them: it may sign in to the same org again.)
DELETE FROM resource_baselines b WHERE NOT EXISTS (
    SELECT 1 FROM connections c WHERE c.account_id = b.account_id AND c.org_id = b.org_id
);
CREATE FUNCTION connections_forget_org() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- Two transactions removing an org's last two connections take turns here, so the second
    -- sees the first's delete (each statement below reads anew) and forgets the org.
    PERFORM pg_advisory_xact_lock(hashtext(OLD.account_id || '/' || OLD.org_id));
    DELETE FROM resource_baselines WHERE account_id = OLD.account_id AND org_id = OLD.org_id
        AND NOT EXISTS (SELECT 1 FROM connections WHERE account_id = OLD.account_id AND org_id = OLD.org_id);
    RETURN NULL;
END
$$;
CREATE TRIGGER connections_forget_org_on_delete AFTER DELETE ON connections
    FOR EACH ROW WHEN (OLD.org_id IS NOT NULL) EXECUTE FUNCTION connections_forget_org();
CREATE TRIGGER connections_forget_org_on_move AFTER UPDATE OF org_id ON connections
    FOR EACH ROW WHEN (OLD.org_id IS NOT NULL AND NEW.org_id IS NOT NULL AND OLD.org_id <> NEW.org_id)
    EXECUTE FUNCTION connections_forget_org();
