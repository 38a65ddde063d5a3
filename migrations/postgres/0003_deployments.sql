-- Deploys and terminates of a traffic intent set: a durable work queue. A row is claimed by one
-- worker at a time (claimed_by, claimed_until: a lease renewed while it works); a worker that
-- dies leaves a lease that expires, and another worker resumes from the recorded progress.
CREATE TABLE deployments (
    id            UUID PRIMARY KEY,
    set_id        UUID NOT NULL REFERENCES resources (id) ON DELETE CASCADE,
    revision      BIGINT NOT NULL,
    action        TEXT NOT NULL,
    state         TEXT NOT NULL,
    -- The rendered objects of this revision per cluster: what was decided, applied as is.
    manifests     JSONB NOT NULL,
    message       TEXT,
    created_at    TIMESTAMPTZ NOT NULL,
    started_at    TIMESTAMPTZ,
    finished_at   TIMESTAMPTZ,
    claimed_by    TEXT,
    claimed_until TIMESTAMPTZ,
    CONSTRAINT deployments_unique_revision UNIQUE (set_id, revision)
);

CREATE INDEX deployments_queue ON deployments (state, created_at);

-- Outcome per cluster of a deployment.
CREATE TABLE deployment_clusters (
    deployment_id UUID NOT NULL REFERENCES deployments (id) ON DELETE CASCADE,
    cluster       TEXT NOT NULL,
    state         TEXT NOT NULL,
    message       TEXT,
    writes        BIGINT NOT NULL DEFAULT 0,
    updated_at    TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (deployment_id, cluster)
);

-- Progress per object of a deployment (desired, applied, unchanged, pruned, conflict, failed).
CREATE TABLE deployment_objects (
    deployment_id UUID NOT NULL REFERENCES deployments (id) ON DELETE CASCADE,
    cluster       TEXT NOT NULL,
    api_version   TEXT NOT NULL,
    kind          TEXT NOT NULL,
    namespace     TEXT NOT NULL,
    name          TEXT NOT NULL,
    operation     TEXT NOT NULL,
    state         TEXT NOT NULL,
    message       TEXT,
    updated_at    TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (deployment_id, cluster, api_version, kind, namespace, name)
);

-- The inventory: what each set has applied on each cluster (and not removed since).
CREATE TABLE deployed_objects (
    set_id        UUID NOT NULL REFERENCES resources (id) ON DELETE CASCADE,
    cluster       TEXT NOT NULL,
    api_version   TEXT NOT NULL,
    kind          TEXT NOT NULL,
    namespace     TEXT NOT NULL,
    name          TEXT NOT NULL,
    spec_hash     TEXT NOT NULL,
    deployment_id UUID NOT NULL,
    updated_at    TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (set_id, cluster, api_version, kind, namespace, name)
);
