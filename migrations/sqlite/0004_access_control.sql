-- SQLite twin of migrations/postgres/0004_access_control.sql. Keep the two in step.
ALTER TABLE resources ADD COLUMN created_by TEXT;
ALTER TABLE resources ADD COLUMN updated_by TEXT;

CREATE TABLE project_namespaces (
    namespace  TEXT PRIMARY KEY,
    project_id BLOB NOT NULL REFERENCES resources (id) ON DELETE CASCADE
);

CREATE INDEX project_namespaces_project ON project_namespaces (project_id);

INSERT INTO project_namespaces (namespace, project_id)
SELECT DISTINCT json_extract(app.spec, '$.namespace'), p.id
FROM resources app
JOIN resources ca ON ca.id = app.parent_id
JOIN resources p ON p.id = ca.parent_id
WHERE app.kind = 'app' AND p.kind = 'project';

UPDATE resources SET spec = json_set(spec, '$.namespaces', json(COALESCE(
    (SELECT json_group_array(namespace) FROM
        (SELECT n.namespace FROM project_namespaces n WHERE n.project_id = resources.id ORDER BY n.namespace)),
    '[]')))
WHERE kind = 'project';

CREATE TABLE token_secrets (
    token_id     BLOB PRIMARY KEY REFERENCES resources (id) ON DELETE CASCADE,
    hash         BLOB NOT NULL,
    last_used_at TEXT,
    CONSTRAINT token_secrets_unique_hash UNIQUE (hash)
);

-- Secrets of MESHINTENT_BOOTSTRAP_TOKEN already turned into a token: each is created once, so
-- revoking it lasts across restarts (and of two replicas starting together, one creates it).
CREATE TABLE bootstrap_tokens (
    hash       BLOB PRIMARY KEY,
    created_at TEXT NOT NULL
);

CREATE TABLE audit_events (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    time            TEXT NOT NULL,
    actor           TEXT NOT NULL,
    action          TEXT NOT NULL,
    resource        TEXT NOT NULL,
    project         TEXT,
    revision_before INTEGER,
    revision_after  INTEGER,
    status          INTEGER NOT NULL,
    request_id      TEXT NOT NULL,
    message         TEXT
);

CREATE INDEX audit_events_project ON audit_events (project, id);
CREATE INDEX audit_events_actor ON audit_events (actor, id);
CREATE INDEX audit_events_time ON audit_events (time);

CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
BEGIN SELECT RAISE(ABORT, 'audit events are immutable'); END;
CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
BEGIN SELECT RAISE(ABORT, 'audit events are immutable'); END;
