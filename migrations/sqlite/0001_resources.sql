-- SQLite twin of migrations/postgres/0001_resources.sql (UUIDs as 16-byte blobs,
-- timestamps and JSON as text). Keep the two in step.
CREATE TABLE resources (
    id          BLOB PRIMARY KEY,
    kind        TEXT NOT NULL,
    parent_id   BLOB REFERENCES resources (id),
    name_scope  TEXT NOT NULL,
    name        TEXT NOT NULL,
    version     TEXT NOT NULL DEFAULT '',
    description TEXT,
    user_data1  TEXT,
    user_data2  TEXT,
    spec        TEXT NOT NULL,
    revision    INTEGER NOT NULL,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    CONSTRAINT resources_unique_name UNIQUE (parent_id, name_scope, name, version)
);

CREATE INDEX resources_children ON resources (parent_id, kind, name, version);

INSERT INTO resources (id, kind, parent_id, name_scope, name, version, spec, revision, created_at, updated_at)
VALUES (X'00000000000000000000000000000000', 'root', NULL, 'root', '', '', '{}', 1,
        strftime('%Y-%m-%dT%H:%M:%fZ', 'now'), strftime('%Y-%m-%dT%H:%M:%fZ', 'now'));

CREATE TABLE resource_refs (
    from_id BLOB NOT NULL REFERENCES resources (id) ON DELETE CASCADE,
    field   TEXT NOT NULL,
    to_id   BLOB NOT NULL REFERENCES resources (id),
    PRIMARY KEY (from_id, field, to_id)
);

CREATE INDEX resource_refs_to ON resource_refs (to_id);

CREATE TABLE cluster_credentials (
    cluster_id BLOB PRIMARY KEY REFERENCES resources (id) ON DELETE CASCADE,
    ciphertext BLOB NOT NULL
);
