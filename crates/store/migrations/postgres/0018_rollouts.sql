-- Rollouts in waves (#17): a deployment's plan (JSON: its waves, their gates, the failure rate
-- that halts it), the last wave started, and why it waits, is paused, halted or aborted. Each
-- target carries its wave; targets of waves not started yet are 'held'.
ALTER TABLE deployments ADD COLUMN rollout TEXT;
ALTER TABLE deployments ADD COLUMN wave BIGINT NOT NULL DEFAULT 0;
ALTER TABLE deployments ADD COLUMN note TEXT;
ALTER TABLE deployment_targets ADD COLUMN wave BIGINT NOT NULL DEFAULT 0;
-- When a target was first deferred for its org's API allowance (#17): it fails after a day of it.
ALTER TABLE deployment_targets ADD COLUMN deferred_since BIGINT;
-- What the rollout keeper reads every second: the few rollouts still going.
CREATE INDEX deployments_rolling_out ON deployments (status) WHERE rollout IS NOT NULL AND finished_at IS NULL;
