-- Issue #15: a deployment may deploy the loader too (after each org's resource), and each
-- target records what happened to the loader there ("deployed <version>", "unchanged
-- <version>"); a loader failure fails the target with Salesforce's words.
ALTER TABLE deployments ADD COLUMN with_loader INTEGER NOT NULL DEFAULT 0;
ALTER TABLE deployment_targets ADD COLUMN loader TEXT;
