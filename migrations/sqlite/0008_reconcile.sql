-- SQLite twin of migrations/postgres/0008_reconcile.sql.
ALTER TABLE deployments ADD COLUMN triggered_by TEXT NOT NULL DEFAULT 'user';
ALTER TABLE deployments ADD COLUMN repair_of INTEGER;

CREATE TABLE reconcile_state (
    set_id          BLOB PRIMARY KEY REFERENCES resources (id) ON DELETE CASCADE,
    claimed_by      TEXT,
    claimed_until   TEXT,
    next_check_at   TEXT,
    checked_at      TEXT,
    checked_revision INTEGER,
    drifted         BOOLEAN NOT NULL DEFAULT FALSE,
    changed         INTEGER NOT NULL DEFAULT 0,
    missing         INTEGER NOT NULL DEFAULT 0,
    extra           INTEGER NOT NULL DEFAULT 0,
    message         TEXT,
    last_repair_revision INTEGER,
    pending_repair  INTEGER,
    pending_clusters TEXT NOT NULL DEFAULT '[]',
    backoff         TEXT NOT NULL DEFAULT '{}'
);
