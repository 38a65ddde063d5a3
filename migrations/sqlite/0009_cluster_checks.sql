-- SQLite twin of migrations/postgres/0009_cluster_checks.sql.
-- The last check of each cluster (POST /v2/clusters/{cluster}/check, and after each cluster
-- write with a kubeconfig): versions and the Reachable, IstioServed and Permitted conditions.
CREATE TABLE cluster_checks (
    cluster_id         BLOB PRIMARY KEY REFERENCES resources (id) ON DELETE CASCADE,
    checked_at         TEXT NOT NULL,
    kubernetes_version TEXT,
    istio_version      TEXT,
    conditions         TEXT NOT NULL
);
