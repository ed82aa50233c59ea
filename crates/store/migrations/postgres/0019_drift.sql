-- Drift (#17): what Lightbridge last published as each resource in each org, to compare the
-- org's copy with before the next publish and in drift scans; per org, so two connections to
-- the same org share it.
CREATE TABLE resource_baselines (
    account_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    org_id TEXT NOT NULL,
    resource_name TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    content_type TEXT NOT NULL,
    cache_control TEXT NOT NULL,
    body_length BIGINT NOT NULL,
    modstamp_ms BIGINT NOT NULL,
    resource_id TEXT NOT NULL,
    connection_id TEXT NOT NULL,
    deployment_id TEXT NOT NULL,
    published_at BIGINT NOT NULL,
    drift TEXT,
    scanned_at BIGINT,
    PRIMARY KEY (account_id, org_id, resource_name)
);
-- A deployment may publish over changes made in the org; a drifted target remembers who
-- changed it and when, and whether a person chose to overwrite it.
ALTER TABLE deployments ADD COLUMN overwrite_drift BIGINT NOT NULL DEFAULT 0;
ALTER TABLE deployment_targets ADD COLUMN drift_by TEXT;
ALTER TABLE deployment_targets ADD COLUMN drift_at BIGINT;
ALTER TABLE deployment_targets ADD COLUMN overwrite BIGINT NOT NULL DEFAULT 0;
