-- SQLite twin of migrations/postgres/0006_mesh_claims.sql.
-- Mesh names are decided per cluster, not per set (SPEC 7): one set owns each name a rendered
-- object decides (a DestinationRule's host, a VirtualService's host per gateway, a Gateway
-- server's selector, port and host, a ServiceEntry's host). The primary key is the guarantee
-- that two concurrent writes in different sets cannot both claim a name.
CREATE TABLE mesh_claims (
    cluster_id BLOB NOT NULL REFERENCES resources (id) ON DELETE CASCADE,
    kind       TEXT NOT NULL,
    name       TEXT NOT NULL,
    set_id     BLOB NOT NULL REFERENCES resources (id) ON DELETE CASCADE,
    PRIMARY KEY (cluster_id, kind, name)
);

-- Which intents of which set need each name: a name stays claimed while one of its set's
-- intents needs it. Rows of a set that does not own the name are collisions found in data
-- stored before claims existed (listed at start-up).
CREATE TABLE mesh_claim_sources (
    intent_id  BLOB NOT NULL REFERENCES resources (id) ON DELETE CASCADE,
    cluster_id BLOB NOT NULL REFERENCES resources (id) ON DELETE CASCADE,
    kind       TEXT NOT NULL,
    name       TEXT NOT NULL,
    set_id     BLOB NOT NULL REFERENCES resources (id) ON DELETE CASCADE,
    PRIMARY KEY (intent_id, cluster_id, kind, name)
);

CREATE INDEX mesh_claim_sources_name ON mesh_claim_sources (cluster_id, kind, name);

-- Set once the claims of the data stored before this migration have been derived (by the
-- service at start-up: deriving needs the generator).
CREATE TABLE mesh_claims_derived (
    done INTEGER NOT NULL
);
