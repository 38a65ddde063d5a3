-- SQLite twin of migrations/postgres/0003_deployments.sql (one worker per process: the queue is
-- serialized by SQLite's write lock).
CREATE TABLE deployments (
    id            BLOB PRIMARY KEY,
    set_id        BLOB NOT NULL REFERENCES resources (id) ON DELETE CASCADE,
    revision      INTEGER NOT NULL,
    action        TEXT NOT NULL,
    state         TEXT NOT NULL,
    -- The rendered objects of this revision per cluster: what was decided, applied as is.
    manifests     TEXT NOT NULL,
    message       TEXT,
    created_at    TEXT NOT NULL,
    started_at    TEXT,
    finished_at   TEXT,
    claimed_by    TEXT,
    claimed_until TEXT,
    CONSTRAINT deployments_unique_revision UNIQUE (set_id, revision)
);

CREATE INDEX deployments_queue ON deployments (state, created_at);

-- Outcome per cluster of a deployment.
CREATE TABLE deployment_clusters (
    deployment_id BLOB NOT NULL REFERENCES deployments (id) ON DELETE CASCADE,
    cluster       TEXT NOT NULL,
    state         TEXT NOT NULL,
    message       TEXT,
    writes        INTEGER NOT NULL DEFAULT 0,
    updated_at    TEXT NOT NULL,
    PRIMARY KEY (deployment_id, cluster)
);

-- Progress per object of a deployment (desired, applied, unchanged, pruned, conflict, failed).
CREATE TABLE deployment_objects (
    deployment_id BLOB NOT NULL REFERENCES deployments (id) ON DELETE CASCADE,
    cluster       TEXT NOT NULL,
    api_version   TEXT NOT NULL,
    kind          TEXT NOT NULL,
    namespace     TEXT NOT NULL,
    name          TEXT NOT NULL,
    operation     TEXT NOT NULL,
    state         TEXT NOT NULL,
    message       TEXT,
    updated_at    TEXT NOT NULL,
    PRIMARY KEY (deployment_id, cluster, api_version, kind, namespace, name)
);

-- The inventory: what each set has applied on each cluster (and not removed since).
CREATE TABLE deployed_objects (
    set_id        BLOB NOT NULL REFERENCES resources (id) ON DELETE CASCADE,
    cluster       TEXT NOT NULL,
    api_version   TEXT NOT NULL,
    kind          TEXT NOT NULL,
    namespace     TEXT NOT NULL,
    name          TEXT NOT NULL,
    spec_hash     TEXT NOT NULL,
    deployment_id BLOB NOT NULL,
    updated_at    TEXT NOT NULL,
    PRIMARY KEY (set_id, cluster, api_version, kind, namespace, name)
);
