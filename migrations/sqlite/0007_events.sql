-- SQLite twin of migrations/postgres/0007_events.sql. Writers hold SQLite's single write lock
-- (`BEGIN IMMEDIATE`) from the first statement to commit, so AUTOINCREMENT ids become visible
-- in commit order without more locking.
CREATE TABLE events (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    project    TEXT NOT NULL,
    set_path   TEXT NOT NULL,
    event_type TEXT NOT NULL,
    data       TEXT NOT NULL,
    created_at TEXT NOT NULL
);

CREATE INDEX events_set ON events (set_path, id);
CREATE INDEX events_project ON events (project, id);
CREATE INDEX events_created ON events (created_at);
