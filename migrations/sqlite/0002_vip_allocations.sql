-- SQLite twin of migrations/postgres/0002_vip_allocations.sql.
CREATE TABLE vip_allocations (
    cluster_id BLOB NOT NULL REFERENCES resources (id) ON DELETE CASCADE,
    host       TEXT NOT NULL,
    address    TEXT NOT NULL,
    intent_id  BLOB NOT NULL REFERENCES resources (id) ON DELETE CASCADE,
    created_at TEXT NOT NULL,
    PRIMARY KEY (cluster_id, host),
    CONSTRAINT vip_allocations_unique_address UNIQUE (cluster_id, address)
);

CREATE INDEX vip_allocations_intent ON vip_allocations (intent_id);
