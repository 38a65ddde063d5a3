//! Events of sets (SPEC 8 "Events"): what is published, in the writing transaction, and the
//! streams that read them back.
//!
//! An event is stored in the same transaction as the change it reports (`Service::publish`),
//! so a committed change always has its event and a rolled-back one never does. A stream
//! (`Service::follow`) reads the table from a position (`Last-Event-ID`), so a reconnect to a
//! restarted server or to another replica loses nothing; it then waits for new events on this
//! replica's notification (`Service::events_committed`, for low latency) or the poll interval
//! (events written by other replicas). Ids become visible in commit order within a project (see
//! `store/events.rs`), so reading "after the last id seen" never skips an event.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::Stream;
use serde_json::{Map, Value, json};
use tokio::sync::watch;

use super::Service;
use crate::domain::deployment::{ObjectRef, ObjectState, Operation};
use crate::domain::resource::{Kind, ResourcePath};
use crate::error::{Error, Result};
use crate::store::{EventRow, EventScope, NewEvent, StoreResult, Tx};

/// What happened (the SSE `event:` field).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventType {
    /// A create, replace or delete of the set or a resource below it.
    IntentWritten,
    /// A deploy or terminate was queued (with its clusters and their object counts).
    DeployQueued,
    /// An object was applied, or found as desired (`state`: `applied` or `unchanged`).
    ObjectApplied,
    ObjectFailed,
    ObjectPruned,
    ObjectConflict,
    /// A cluster of a deployment reached its final state (with its writes).
    ClusterFinished,
    DeployFinished,
    /// Reserved for the reconciler: drift found on a cluster.
    DriftFound,
    /// Reserved for the reconciler: drift repaired by redeploying the same revision.
    DriftRepaired,
}

impl EventType {
    pub const ALL: &'static [EventType] = &[
        EventType::IntentWritten,
        EventType::DeployQueued,
        EventType::ObjectApplied,
        EventType::ObjectFailed,
        EventType::ObjectPruned,
        EventType::ObjectConflict,
        EventType::ClusterFinished,
        EventType::DeployFinished,
        EventType::DriftFound,
        EventType::DriftRepaired,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventType::IntentWritten => "intent-written",
            EventType::DeployQueued => "deploy-queued",
            EventType::ObjectApplied => "object-applied",
            EventType::ObjectFailed => "object-failed",
            EventType::ObjectPruned => "object-pruned",
            EventType::ObjectConflict => "object-conflict",
            EventType::ClusterFinished => "cluster-finished",
            EventType::DeployFinished => "deploy-finished",
            EventType::DriftFound => "drift-found",
            EventType::DriftRepaired => "drift-repaired",
        }
    }

    /// The event of an object reaching `state` (None for states that are not an outcome).
    pub fn of_object(state: ObjectState) -> Option<EventType> {
        match state {
            ObjectState::Applied | ObjectState::Unchanged => Some(EventType::ObjectApplied),
            ObjectState::Failed => Some(EventType::ObjectFailed),
            ObjectState::Pruned => Some(EventType::ObjectPruned),
            ObjectState::Conflict => Some(EventType::ObjectConflict),
            ObjectState::Desired | ObjectState::Extra => None,
        }
    }
}

/// An event to publish: the set it belongs to, its type, and its data (a JSON object; `set`, the
/// set's URL, is added). Never put a secret in `data`.
#[derive(Clone, Debug)]
pub struct Event {
    pub set: ResourcePath,
    pub kind: EventType,
    pub data: Map<String, Value>,
}

impl Event {
    /// `set` may be the set's path or a path below it.
    pub fn new(set: &ResourcePath, kind: EventType, data: Value) -> Self {
        let set = set
            .ancestor(Kind::TrafficIntentSet)
            .unwrap_or_else(|| set.clone());
        let data = match data {
            Value::Object(map) => map,
            other => Map::from_iter([("value".to_owned(), other)]),
        };
        Self { set, kind, data }
    }

    /// An object's outcome in a deployment (None for states that are not an outcome).
    pub fn object(
        set: &ResourcePath,
        revision: i64,
        key: &ObjectRef,
        operation: Operation,
        state: ObjectState,
        message: Option<&str>,
    ) -> Option<Self> {
        let kind = EventType::of_object(state)?;
        Some(Self::new(
            set,
            kind,
            json!({
                "revision": revision,
                "cluster": key.cluster.as_str(),
                "kind": key.kind.name(),
                "namespace": key.namespace.as_str(),
                "name": key.name.as_str(),
                "operation": operation.as_str(),
                "state": state.as_str(),
                "message": message,
            }),
        ))
    }

    /// `intent-written` for a create, replace or delete of `path`, when it is a set or below
    /// one (None otherwise).
    pub(crate) fn intent_written(
        path: &ResourcePath,
        operation: &str,
        revision: Option<i64>,
    ) -> Option<Self> {
        let set = path.ancestor(Kind::TrafficIntentSet)?;
        Some(Self::new(
            &set,
            EventType::IntentWritten,
            json!({
                "resource": path.url(),
                "kind": path.kind().map(|k| k.collection()),
                "operation": operation,
                "revision": revision,
            }),
        ))
    }

    fn into_new(self) -> Option<NewEvent> {
        let project = self.set.find(Kind::Project)?.name.to_string();
        let set_path = self.set.url();
        let mut data = Map::with_capacity(self.data.len() + 1);
        data.insert("set".into(), Value::String(set_path.clone()));
        data.extend(self.data);
        Some(NewEvent {
            project,
            set_path,
            event_type: self.kind.as_str(),
            data: Value::Object(data),
        })
    }
}

/// A stored event, as a stream sends it.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredEvent {
    /// The stream position (SSE `id:`).
    pub id: i64,
    /// The type (SSE `event:`).
    pub kind: String,
    /// SSE `data:` (a JSON object).
    pub data: Value,
    pub created_at: DateTime<Utc>,
}

impl From<EventRow> for StoredEvent {
    fn from(row: EventRow) -> Self {
        Self {
            id: row.id,
            kind: row.event_type,
            data: row.data.0,
            created_at: row.created_at,
        }
    }
}

/// Default of `--event-retention`: events are kept seven days.
pub const DEFAULT_EVENT_RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);

/// How streams wait and how long events are kept.
#[derive(Clone, Debug)]
pub struct EventSettings {
    /// Events older than this are removed (in the background, in batches).
    pub retention: Duration,
    /// How often a waiting stream reads the table (events of other replicas arrive this late at
    /// most; this replica's arrive at once).
    pub poll_interval: Duration,
    /// An SSE comment is sent after this long without an event.
    pub heartbeat: Duration,
    /// How often the retention runs.
    pub prune_interval: Duration,
}

impl Default for EventSettings {
    fn default() -> Self {
        Self {
            retention: DEFAULT_EVENT_RETENTION,
            poll_interval: Duration::from_millis(500),
            heartbeat: Duration::from_secs(15),
            prune_interval: Duration::from_secs(60),
        }
    }
}

/// Parses a retention such as `7d`, `12h`, `30m` or `3600s` (a bare number is seconds).
pub fn parse_retention(text: &str) -> std::result::Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(at) => text.split_at(at),
        None => (text, "s"),
    };
    let n: u64 = number
        .parse()
        .map_err(|_| format!("\"{text}\" is not a duration such as 7d, 12h, 30m or 3600s"))?;
    let seconds = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("\"{text}\": the unit must be s, m, h or d")),
    };
    if n == 0 {
        return Err("the event retention must be longer than zero".into());
    }
    Ok(Duration::from_secs(n.saturating_mul(seconds)))
}

/// This replica's notification of committed events, and the settings of its streams.
#[derive(Debug)]
pub struct EventHub {
    committed: watch::Sender<u64>,
    settings: EventSettings,
}

impl EventHub {
    pub fn new(settings: EventSettings) -> Self {
        Self {
            committed: watch::Sender::new(0),
            settings,
        }
    }

    pub fn settings(&self) -> &EventSettings {
        &self.settings
    }
}

/// Events read per statement by a stream.
const READ_BATCH: i64 = 500;

/// `Service::publish` for callers whose errors are store errors (the worker).
pub async fn store_events(tx: &mut Tx, events: Vec<Event>) -> StoreResult<()> {
    let rows: Vec<NewEvent> = events.into_iter().filter_map(Event::into_new).collect();
    if rows.is_empty() {
        return Ok(());
    }
    tx.insert_events(&rows).await
}

struct Follow {
    service: Service,
    scope: EventScope,
    cursor: i64,
    buffer: VecDeque<StoredEvent>,
    committed: watch::Receiver<u64>,
}

impl Service {
    pub fn with_event_settings(mut self, settings: EventSettings) -> Self {
        self.events = Arc::new(EventHub::new(settings));
        self
    }

    pub fn event_settings(&self) -> &EventSettings {
        self.events.settings()
    }

    /// Stores `events` in `tx` (the transaction of the change they report). Call it as the
    /// transaction's last write (on PostgreSQL it takes the project's event lock until commit),
    /// and `events_committed` after the commit.
    pub async fn publish(&self, tx: &mut Tx, events: Vec<Event>) -> Result<()> {
        store_events(tx, events).await?;
        Ok(())
    }

    /// Wakes this replica's streams after a commit that published events.
    pub fn events_committed(&self) {
        self.events
            .committed
            .send_modify(|n| *n = n.wrapping_add(1));
    }

    /// The scope of a set's stream; 404 when the set does not exist.
    pub async fn set_event_scope(&self, path: &ResourcePath) -> Result<EventScope> {
        let mut tx = self.store.begin_single_read().await?;
        self.resolve_path(&mut tx, path).await?;
        tx.commit().await?;
        Ok(EventScope::Set(path.url()))
    }

    /// The scope of a project's stream; 404 when the project does not exist.
    pub async fn project_event_scope(&self, path: &ResourcePath) -> Result<EventScope> {
        let mut tx = self.store.begin_single_read().await?;
        self.resolve_path(&mut tx, path).await?;
        tx.commit().await?;
        let project = path
            .find(Kind::Project)
            .ok_or_else(|| Error::internal("events", "not a project path"))?;
        Ok(EventScope::Project(project.name.to_string()))
    }

    /// The events of `scope` after `after` (without it: from now on), then each new one as it
    /// is committed; never ends on its own. A failed read is logged and tried again after the
    /// poll interval.
    pub async fn follow(
        &self,
        scope: EventScope,
        after: Option<i64>,
    ) -> Result<impl Stream<Item = StoredEvent> + use<>> {
        // The start is fixed before the answer goes out, so a client that looks at the status
        // after it connected misses nothing in between.
        let cursor = match after {
            Some(after) => after,
            None => {
                let mut tx = self.store.begin_single_read().await?;
                let last = tx.last_event_id(&scope).await?;
                tx.commit().await?;
                last
            }
        };
        let state = Follow {
            service: self.clone(),
            scope,
            cursor,
            buffer: VecDeque::new(),
            committed: self.events.committed.subscribe(),
        };
        Ok(futures::stream::unfold(state, |mut s| async move {
            loop {
                if let Some(event) = s.buffer.pop_front() {
                    return Some((event, s));
                }
                // Marked seen before reading, so a commit during the read wakes the next wait.
                s.committed.borrow_and_update();
                match s.read().await {
                    Ok(true) => continue,
                    Ok(false) => {}
                    Err(e) => tracing::warn!(error = %e, "reading events failed; retrying"),
                }
                let poll = s.service.events.settings.poll_interval;
                tokio::select! {
                    _ = s.committed.changed() => {}
                    _ = tokio::time::sleep(poll) => {}
                }
            }
        }))
    }

    /// Removes events older than the retention, in batches; returns how many.
    pub async fn prune_events(&self) -> Result<u64> {
        let retention = chrono::Duration::from_std(self.events.settings.retention)
            .unwrap_or(chrono::Duration::days(7));
        let cutoff = Utc::now() - retention;
        let mut total = 0;
        loop {
            let mut tx = self.store.begin_write().await?;
            let removed = tx.prune_events(cutoff).await?;
            tx.commit().await?;
            total += removed;
            if removed < 5_000 {
                return Ok(total);
            }
        }
    }

    /// Runs the retention every `prune_interval` until the task is aborted.
    pub fn spawn_event_pruner(&self) -> tokio::task::JoinHandle<()> {
        let service = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(service.events.settings.prune_interval);
            loop {
                tick.tick().await;
                match service.prune_events().await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(removed = n, "old events removed"),
                    Err(e) => tracing::warn!(error = %e, "removing old events failed"),
                }
            }
        })
    }
}

impl Follow {
    /// Fills the buffer; false when there was nothing new.
    async fn read(&mut self) -> Result<bool> {
        let mut tx = self.service.store.begin_single_read().await?;
        let rows = tx
            .events_after(&self.scope, self.cursor, READ_BATCH)
            .await?;
        tx.commit().await?;
        if let Some(last) = rows.last() {
            self.cursor = last.id;
        }
        let found = !rows.is_empty();
        self.buffer.extend(rows.into_iter().map(StoredEvent::from));
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retention_parses_units() {
        assert_eq!(parse_retention("7d"), Ok(Duration::from_secs(604_800)));
        assert_eq!(parse_retention("12h"), Ok(Duration::from_secs(43_200)));
        assert_eq!(parse_retention("90"), Ok(Duration::from_secs(90)));
        assert!(parse_retention("0s").is_err());
        assert!(parse_retention("3w").is_err());
        assert!(parse_retention("h").is_err());
    }

    #[test]
    fn every_type_has_its_own_name() {
        let names: std::collections::BTreeSet<&str> =
            EventType::ALL.iter().map(|t| t.as_str()).collect();
        assert_eq!(names.len(), EventType::ALL.len());
    }
}
