-- Events of sets (SPEC 8 "Events"): what the SSE streams `.../traffic-intent-sets/{set}/events`
-- and `/v2/projects/{p}/events` send, kept in the database so that a client reconnecting with
-- `Last-Event-ID` (after a restart, or to another replica) resumes without loss.
--
-- `id` is the stream position. Writers insert events under a transaction-level advisory lock
-- per project (store/events.rs), held until commit, so within a project ids become visible in
-- commit order: a reader that has seen id N never later finds a committed id below N.
-- Events carry the set's URL path, not a foreign key: a deleted set's last events stay readable
-- until retention removes them.
CREATE TABLE events (
    id         BIGSERIAL PRIMARY KEY,
    project    TEXT NOT NULL,
    set_path   TEXT NOT NULL,
    event_type TEXT NOT NULL,
    data       JSONB NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);

CREATE INDEX events_set ON events (set_path, id);
CREATE INDEX events_project ON events (project, id);
CREATE INDEX events_created ON events (created_at);
