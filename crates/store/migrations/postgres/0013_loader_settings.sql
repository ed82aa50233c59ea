-- Issue #15: a system's loader settings — the scripts and style sheets inside each
-- environment's published static resource that the loader loads on every Lightning page, and
-- the origins its player calls back to (each a CSP Trusted Site). Lists are JSON arrays.
CREATE TABLE loader_settings (
    system_id     TEXT PRIMARY KEY REFERENCES systems(id) ON DELETE CASCADE,
    account_id    TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    scripts       TEXT NOT NULL,
    styles        TEXT NOT NULL,
    trusted_sites TEXT NOT NULL,
    updated_at    BIGINT NOT NULL,
    updated_by    TEXT NOT NULL
);
