-- Virtual IPs for services reached across clusters: one per (cluster, host), unique per cluster,
-- kept across renders, and released with the intent that needed it (or the cluster).
CREATE TABLE vip_allocations (
    cluster_id UUID NOT NULL REFERENCES resources (id) ON DELETE CASCADE,
    host       TEXT NOT NULL,
    address    TEXT NOT NULL,
    intent_id  UUID NOT NULL REFERENCES resources (id) ON DELETE CASCADE,
    created_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (cluster_id, host),
    CONSTRAINT vip_allocations_unique_address UNIQUE (cluster_id, address)
);

CREATE INDEX vip_allocations_intent ON vip_allocations (intent_id);
