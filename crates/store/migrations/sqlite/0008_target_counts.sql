-- Every finished target asks how many of its deployment's targets are still open, and the
-- deployment pages count targets by status: without this index both visit every target row
-- of the deployment (quadratic over a 1,000-org fan-out).
CREATE INDEX targets_by_deployment_status ON deployment_targets (deployment_id, status);
