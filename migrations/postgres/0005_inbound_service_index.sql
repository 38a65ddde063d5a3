-- The one-intent-per-Kubernetes-Service rule looks up a set's inbound intents by the
-- service they expose on every inbound write: an index keeps that look-up independent of
-- the set's size. (The query spells the kind as this literal, so the partial index applies.)
CREATE INDEX resources_inbound_service ON resources (parent_id, (spec ->> 'serviceName'))
    WHERE kind = 'inbound_intent';
