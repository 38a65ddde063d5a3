-- Reconciliation (SPEC 8): who asked for a deployment, and the state of each set's periodic
-- check against its clusters.

-- `user` (deploy/terminate through the API) or `reconciler` (a repair of drift); a repair
-- redeploys the manifests of revision `repair_of`.
ALTER TABLE deployments ADD COLUMN triggered_by TEXT NOT NULL DEFAULT 'user';
ALTER TABLE deployments ADD COLUMN repair_of BIGINT;

-- One row per deployed set the reconciler has looked at. A check is claimed like a
-- deployment (claimed_by, claimed_until: a lease), so replicas never check or heal one set at
-- once. The rest is the last check's result, shown in GET .../status as `sync`.
CREATE TABLE reconcile_state (
    set_id          UUID PRIMARY KEY REFERENCES resources (id) ON DELETE CASCADE,
    claimed_by      TEXT,
    claimed_until   TIMESTAMPTZ,
    -- When the next periodic check is due (NULL: one interval after the latest deploy).
    next_check_at   TIMESTAMPTZ,
    checked_at      TIMESTAMPTZ,
    -- The deployment revision the last check compared with.
    checked_revision BIGINT,
    drifted         BOOLEAN NOT NULL DEFAULT FALSE,
    changed         BIGINT NOT NULL DEFAULT 0,
    missing         BIGINT NOT NULL DEFAULT 0,
    extra           BIGINT NOT NULL DEFAULT 0,
    message         TEXT,
    last_repair_revision BIGINT,
    -- The repair queued by the last check and the clusters it repairs (JSON list), until a
    -- later check sees it applied.
    pending_repair  BIGINT,
    pending_clusters JSONB NOT NULL DEFAULT '[]',
    -- Per cluster that keeps failing: {"<cluster>": {"failures": n, "retryAt": "<time>"}}.
    backoff         JSONB NOT NULL DEFAULT '{}'
);
