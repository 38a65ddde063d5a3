-- SQLite twin of migrations/postgres/0005_inbound_service_index.sql. Keep the two in step.
CREATE INDEX resources_inbound_service ON resources (parent_id, json_extract(spec, '$.serviceName'))
    WHERE kind = 'inbound_intent';
