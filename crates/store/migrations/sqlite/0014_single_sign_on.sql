-- Single sign-on (issue #13): an account's OpenID Connect provider. The client secret is sealed
-- by the vault, bound to the account id. `role_claim` names the claim whose value (owner, admin,
-- editor or viewer) is a new person's role; without it, or with another value, they get
-- `default_role`. With `sso_only`, passwords are refused for the account's people except the
-- break-glass owner the operator names.
CREATE TABLE account_sso (
    account_id        TEXT PRIMARY KEY REFERENCES accounts(id) ON DELETE CASCADE,
    issuer            TEXT NOT NULL,
    client_id         TEXT NOT NULL,
    client_secret     TEXT NOT NULL,
    role_claim        TEXT,
    default_role      TEXT NOT NULL,
    sso_only          INTEGER NOT NULL DEFAULT 0,
    break_glass_email TEXT,
    updated_at        INTEGER NOT NULL
);

-- Email domains that lead to an account's provider from the sign-in page; the operator vouches
-- for each (a domain belongs to one account).
CREATE TABLE sso_domains (
    domain     TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL
);

-- Who a provider's subject is here: (issuer, sub) → user, found again at every sign-in.
CREATE TABLE sso_identities (
    issuer  TEXT NOT NULL,
    subject TEXT NOT NULL,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    PRIMARY KEY (issuer, subject)
);
