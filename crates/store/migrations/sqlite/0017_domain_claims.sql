-- An account proves it owns an email domain (issue #13): its owner claims the domain, publishes
-- the claim's token as a DNS TXT record at `_lightbridge-challenge.<domain>`, and Lightbridge
-- routes the domain to the account once it finds the record. Claims are per account (two
-- accounts may claim one domain; only the one whose token DNS shows gets it). The token is
-- public by design (anyone can read DNS), so it is stored as it is.
CREATE TABLE sso_domain_claims (
    account_id  TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    domain      TEXT NOT NULL,
    token       TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    checked_at  INTEGER,
    last_result TEXT,
    PRIMARY KEY (account_id, domain)
);

-- How a routed domain came to the account: the operator vouched for it, or DNS proved it.
ALTER TABLE sso_domains ADD COLUMN verified_by TEXT NOT NULL DEFAULT 'operator';
