-- The resource tree. Every kind lives here; `parent_id` links a resource to its parent
-- (clusters and projects hang off the root row). Names are unique per parent and name
-- scope (inbound, outbound and route intents share one scope), enforced by the database.
CREATE TABLE resources (
    id          UUID PRIMARY KEY,
    kind        TEXT NOT NULL,
    parent_id   UUID REFERENCES resources (id),
    name_scope  TEXT NOT NULL,
    name        TEXT NOT NULL,
    version     TEXT NOT NULL DEFAULT '',
    description TEXT,
    user_data1  TEXT,
    user_data2  TEXT,
    spec        JSONB NOT NULL,
    revision    BIGINT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL,
    CONSTRAINT resources_unique_name UNIQUE (parent_id, name_scope, name, version)
);

CREATE INDEX resources_children ON resources (parent_id, kind, name, version);

INSERT INTO resources (id, kind, parent_id, name_scope, name, version, spec, revision, created_at, updated_at)
VALUES ('00000000-0000-0000-0000-000000000000', 'root', NULL, 'root', '', '', '{}', 1,
        CURRENT_TIMESTAMP, CURRENT_TIMESTAMP);

-- References between resources (an app's clusters, an intent's app, a route's target).
-- Deleting a referenced resource fails on the foreign key: "in use" is a constraint.
CREATE TABLE resource_refs (
    from_id UUID NOT NULL REFERENCES resources (id) ON DELETE CASCADE,
    field   TEXT NOT NULL,
    to_id   UUID NOT NULL REFERENCES resources (id),
    PRIMARY KEY (from_id, field, to_id)
);

CREATE INDEX resource_refs_to ON resource_refs (to_id);

-- Encrypted cluster kubeconfigs (AES-256-GCM, see src/crypto.rs). Never returned by the API.
CREATE TABLE cluster_credentials (
    cluster_id UUID PRIMARY KEY REFERENCES resources (id) ON DELETE CASCADE,
    ciphertext BYTEA NOT NULL
);
