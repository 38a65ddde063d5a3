-- Access control (SPEC section 6): who wrote a resource, namespace ownership, API token
-- secrets, and the audit log. Role bindings and tokens themselves are resources of the tree
-- (kinds global_role_binding, project_role_binding, global_token, project_token).
ALTER TABLE resources ADD COLUMN created_by TEXT;
ALTER TABLE resources ADD COLUMN updated_by TEXT;

-- A namespace belongs to at most one project: of two concurrent claims, one wins.
CREATE TABLE project_namespaces (
    namespace  TEXT PRIMARY KEY,
    project_id UUID NOT NULL REFERENCES resources (id) ON DELETE CASCADE
);

CREATE INDEX project_namespaces_project ON project_namespaces (project_id);

-- Existing projects claim the namespaces their apps use. Before this file runs, meshintent
-- refuses to migrate (naming both projects) if two projects' apps share a namespace; the
-- primary key is the backstop.
INSERT INTO project_namespaces (namespace, project_id)
SELECT DISTINCT app.spec ->> 'namespace', p.id
FROM resources app
JOIN resources ca ON ca.id = app.parent_id
JOIN resources p ON p.id = ca.parent_id
WHERE app.kind = 'app' AND p.kind = 'project';

UPDATE resources p SET spec = jsonb_set(p.spec, '{namespaces}', COALESCE(
    (SELECT jsonb_agg(n.namespace ORDER BY n.namespace) FROM project_namespaces n WHERE n.project_id = p.id),
    '[]'::jsonb))
WHERE p.kind = 'project';

-- API tokens are stored only as SHA-256 hashes of the credential.
CREATE TABLE token_secrets (
    token_id     UUID PRIMARY KEY REFERENCES resources (id) ON DELETE CASCADE,
    hash         BYTEA NOT NULL,
    last_used_at TIMESTAMPTZ,
    CONSTRAINT token_secrets_unique_hash UNIQUE (hash)
);

-- Secrets of MESHINTENT_BOOTSTRAP_TOKEN already turned into a token: each is created once, so
-- revoking it lasts across restarts (and of two replicas starting together, one creates it).
CREATE TABLE bootstrap_tokens (
    hash       BYTEA PRIMARY KEY,
    created_at TIMESTAMPTZ NOT NULL
);

-- Every change, and every refused attempt. Immutable: the triggers below refuse UPDATE and
-- DELETE.
CREATE TABLE audit_events (
    id              BIGSERIAL PRIMARY KEY,
    time            TIMESTAMPTZ NOT NULL,
    actor           TEXT NOT NULL,
    action          TEXT NOT NULL,
    resource        TEXT NOT NULL,
    project         TEXT,
    revision_before BIGINT,
    revision_after  BIGINT,
    status          INTEGER NOT NULL,
    request_id      TEXT NOT NULL,
    message         TEXT
);

CREATE INDEX audit_events_project ON audit_events (project, id);
CREATE INDEX audit_events_actor ON audit_events (actor, id);
CREATE INDEX audit_events_time ON audit_events (time);

CREATE FUNCTION audit_events_immutable() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'audit events are immutable';
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER audit_events_no_update BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_events_immutable();
