//! Create, read, list, replace and delete for every kind of resource.

use uuid::Uuid;

use super::Service;
use super::access::{Caller, audit_change, change_action};
use super::context::{Ancestors, check_write, stored_spec};
use super::events::Event;
use super::paging::{Page, PageToken};
use crate::auth::token;
use crate::domain::access::{Action, Decision, decide};
use crate::domain::app::ProjectSpec;
use crate::domain::envelopes::{Resource, SecretChange, SpecDefaults, StoredFacts};
use crate::domain::resource::{Key, Kind, Metadata, ResourcePath};
use crate::domain::violations::Violations;
use crate::error::{Error, Result};
use crate::store::{NewResource, ROOT_ID, ResourceRow, StoreError, Tx};

/// An `If-Match` precondition: `*`, or a list of entity tags.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IfMatch {
    Any,
    Tags(Vec<String>),
}

impl IfMatch {
    /// Parses an `If-Match` header value (RFC 9110 section 13.1.1): `*` or entity tags, which
    /// are quoted (`"3"`, weak: `W/"3"`). An unquoted tag (`3`) is refused, saying so.
    pub fn parse(header: &str) -> std::result::Result<IfMatch, String> {
        let header = header.trim();
        if header == "*" {
            return Ok(IfMatch::Any);
        }
        let tags: Vec<String> = split_tags(header)
            .into_iter()
            .map(|t| t.trim().to_owned())
            .filter(|t| !t.is_empty())
            .collect();
        let quoted = |t: &str| {
            let t = t.strip_prefix("W/").unwrap_or(t);
            t.len() >= 2
                && t.starts_with('"')
                && t.ends_with('"')
                && !t[1..t.len() - 1].contains('"')
        };
        match tags.iter().find(|t| !quoted(t)) {
            _ if tags.is_empty() => Err("must be * or entity tags such as \"3\"".to_owned()),
            Some(bad) => Err(format!(
                "entity tags are quoted: send If-Match: \"{}\" (got {bad})",
                bad.trim_matches('"')
            )),
            None => Ok(IfMatch::Tags(tags)),
        }
    }

    /// Strong comparison: weak tags (`W/"..."`) never match.
    fn matches(&self, revision: i64) -> bool {
        match self {
            IfMatch::Any => true,
            IfMatch::Tags(tags) => tags.iter().any(|t| *t == etag(revision)),
        }
    }
}

/// The list's elements: split at commas outside quotes (an entity tag may hold a comma).
fn split_tags(header: &str) -> Vec<&str> {
    let mut tags = Vec::new();
    let (mut start, mut quoted) = (0, false);
    for (i, c) in header.char_indices() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => {
                tags.push(&header[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    tags.push(&header[start..]);
    tags
}

/// The entity tag of a revision.
pub fn etag(revision: i64) -> String {
    format!("\"{revision}\"")
}

/// One page of a list, as typed resources.
pub struct ListPage<R: Resource> {
    pub items: Vec<R>,
    pub next: Option<PageToken>,
}

/// What a delete removed.
#[derive(Debug)]
pub struct Deleted {
    pub id: Uuid,
}

impl Service {
    /// Resolves every resource along `path`, root first, in one statement. A missing one is
    /// a 404 naming it.
    pub(crate) async fn resolve_path(
        &self,
        tx: &mut Tx,
        path: &ResourcePath,
    ) -> Result<Vec<ResourceRow>> {
        let rows = tx.resolve(path.segments()).await?;
        if rows.len() < path.segments().len() {
            let mut so_far = ResourcePath::root();
            for (kind, key) in &path.segments()[..=rows.len()] {
                so_far = so_far.child(*kind, key.clone());
            }
            return Err(Error::NotFound(format!("{so_far} does not exist")));
        }
        Ok(rows)
    }

    /// Serializes the writes that could make each other's checks wrong. Below a set (on
    /// PostgreSQL; SQLite serializes all writes already), a member write holds the set's row
    /// lock shared, so writers of the whole set (an app's re-plan, a deploy, a document) wait
    /// for it and it for them; then, in this order, what its rules compare with: the
    /// Kubernetes Service it exposes (inbound) or the set's outbound hosts (outbound), the
    /// inbound intent it belongs to (client, security intent), itself (`own`), and the intent a
    /// route targets. Other resources lock `own`.
    async fn lock_scope(
        &self,
        tx: &mut Tx,
        path: &ResourcePath,
        rows: &[ResourceRow],
        own: Option<Uuid>,
        spec: Option<&serde_json::Value>,
    ) -> Result<()> {
        let segments = path.segments();
        let set_index = segments
            .iter()
            .position(|(k, _)| *k == Kind::TrafficIntentSet);
        let (Some(set_index), Some(kind)) = (set_index, path.kind()) else {
            if let Some(id) = own {
                tx.lock(id).await?;
            }
            return Ok(());
        };
        if set_index + 1 == segments.len() {
            if let Some(id) = own {
                tx.lock(id).await?;
            }
            return Ok(());
        }
        let set = rows[set_index].id;
        tx.lock_shared(set).await?;
        let text = |field: &str| spec.and_then(|s| s.get(field)).and_then(|v| v.as_str());
        match kind {
            Kind::InboundIntent => {
                if let Some(service) = text("serviceName") {
                    tx.lock_name(&format!("{set}/inbound-service/{service}"))
                        .await?;
                }
            }
            Kind::OutboundIntent => tx.lock_name(&format!("{set}/outbound-hosts")).await?,
            _ => {}
        }
        let inbound = segments
            .iter()
            .position(|(k, _)| *k == Kind::InboundIntent)
            .filter(|i| i + 1 < segments.len());
        if let Some(i) = inbound {
            tx.lock(rows[i].id).await?;
        }
        if let Some(id) = own {
            tx.lock(id).await?;
        }
        if kind == Kind::RouteIntent {
            let target = spec.and_then(|s| s.get("target"));
            let named = |field: &str| target.and_then(|t| t.get(field)).and_then(|v| v.as_str());
            for (field, kind) in [
                ("inboundIntent", Kind::InboundIntent),
                ("outboundIntent", Kind::OutboundIntent),
            ] {
                if let Some(name) = named(field) {
                    tx.lock_child(set, kind, name).await?;
                }
            }
        }
        Ok(())
    }

    /// For a write to an existing resource: resolves it, takes the lock of its scope, reads it
    /// afresh (another writer may have changed it before the lock) and checks `If-Match`.
    async fn lock_current(
        &self,
        tx: &mut Tx,
        path: &ResourcePath,
        if_match: Option<&IfMatch>,
        spec: Option<&serde_json::Value>,
    ) -> Result<(Vec<ResourceRow>, ResourceRow)> {
        let rows = self.resolve_path(tx, path).await?;
        let id = rows
            .last()
            .ok_or_else(|| Error::internal("write", "empty path"))?
            .id;
        self.lock_scope(tx, path, &rows, Some(id), spec).await?;
        let current = tx
            .by_id(id)
            .await?
            .ok_or_else(|| Error::NotFound(format!("{path} does not exist")))?;
        check_precondition(path, &current, if_match)?;
        Ok((rows, current))
    }

    async fn facts(
        &self,
        tx: &mut Tx,
        kind: Kind,
        rows: &[ResourceRow],
    ) -> Result<Vec<StoredFacts>> {
        if kind.is_token() {
            let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
            let used = tx.token_last_used(&ids).await?;
            return Ok(used
                .into_iter()
                .map(|(_, last_used_at)| StoredFacts {
                    last_used_at,
                    ..StoredFacts::default()
                })
                .collect());
        }
        if kind != Kind::Cluster {
            return Ok(vec![StoredFacts::default(); rows.len()]);
        }
        let with_credentials = tx.credential_ids().await?;
        let mut checks = tx.cluster_checks().await?;
        Ok(rows
            .iter()
            .map(|r| StoredFacts {
                kubeconfig_stored: with_credentials.contains(&r.id),
                cluster_check: checks.remove(&r.id),
                ..StoredFacts::default()
            })
            .collect())
    }

    pub async fn get<R: Resource>(&self, path: &ResourcePath) -> Result<R> {
        // One resource, resolved in one statement: no transaction needed around it.
        let mut tx = self.store.begin_single_read().await?;
        let rows = self.resolve_path(&mut tx, path).await?;
        let row = rows
            .last()
            .ok_or_else(|| Error::internal("get", "empty path"))?;
        let facts = self
            .facts(&mut tx, R::KIND, std::slice::from_ref(row))
            .await?;
        to_resource(row, &facts[0])
    }

    /// A page of `parent`'s children. Projects the caller may not read are left out (so a
    /// page can hold fewer items than the limit; `next` still continues after it).
    pub async fn list<R: Resource>(
        &self,
        parent: &ResourcePath,
        page: Page,
        caller: &Caller,
    ) -> Result<ListPage<R>> {
        let limit = page.limit()?;
        let mut tx = self.store.begin_read().await?;
        let rows = self.resolve_path(&mut tx, parent).await?;
        let parent_id = rows.last().map_or(ROOT_ID, |r| r.id);
        let after = page.after.unwrap_or(PageToken {
            name: String::new(),
            version: String::new(),
        });
        let mut items = tx
            .children_page(parent_id, R::KIND, (&after.name, &after.version), limit + 1)
            .await?;
        let next = if items.len() > limit as usize {
            items.truncate(limit as usize);
            items.last().map(|r| PageToken {
                name: r.name.clone(),
                version: r.version.clone(),
            })
        } else {
            None
        };
        if R::KIND == Kind::Project {
            items.retain(|row| {
                row.name
                    .parse()
                    .is_ok_and(|name| caller.principal.can_read_project(&name))
            });
        }
        let facts = self.facts(&mut tx, R::KIND, &items).await?;
        let items = items
            .iter()
            .zip(&facts)
            .map(|(row, facts)| to_resource(row, facts))
            .collect::<Result<Vec<R>>>()?;
        Ok(ListPage { items, next })
    }

    pub async fn create<R: Resource>(
        &self,
        parent: &ResourcePath,
        body: R,
        caller: &Caller,
    ) -> Result<(ResourcePath, R)> {
        self.create_with_secret(parent, body, caller, None).await
    }

    /// `create`; a token gets `preset_secret` instead of a new random one (the bootstrap
    /// token an operator generated for a Helm install).
    pub(crate) async fn create_with_secret<R: Resource>(
        &self,
        parent: &ResourcePath,
        body: R,
        caller: &Caller,
        preset_secret: Option<String>,
    ) -> Result<(ResourcePath, R)> {
        let (metadata, spec) = body.into_parts();
        let metadata = metadata.writable();
        let spec = spec.with_name_defaults(&metadata.name);
        let key = Key {
            name: metadata.name.clone(),
            version: spec.version().cloned(),
        };
        let path = parent.child(R::KIND, key.clone());
        check_write_only(&spec)?;
        let new = new_resource(&metadata, &spec, caller)?;
        let secret = spec.secret_change();
        let check_after = matches!(secret, SecretChange::Set(_));

        let mut tx = self.store.begin_write().await?;
        let rows = self.resolve_path(&mut tx, parent).await?;
        let parent_id = rows.last().map_or(ROOT_ID, |r| r.id);
        self.lock_scope(&mut tx, &path, &rows, None, Some(&new.spec))
            .await?;
        let checked = check_write(
            &mut tx,
            Ancestors {
                path: &path,
                rows: &rows,
            },
            &new.spec,
        )
        .await?;
        let row = match tx.insert(parent_id, R::KIND, &key, new).await {
            Ok(row) => row,
            Err(StoreError::Duplicate) => return Err(duplicate(&path)),
            Err(e) => return Err(e.into()),
        };
        insert_refs(&mut tx, row.id, &checked.refs).await?;
        self.vips_after_write(&mut tx, &path, &rows, row.id, true, checked.neighbourhood)
            .await?;
        self.claims_after_change(&mut tx, &path, &rows, None, Some(&row.spec.0))
            .await?;
        if R::KIND == Kind::Project {
            tx = self.claim_namespaces(tx, row.id, &row.spec.0).await?;
        }
        let stored = self.apply_secret(&mut tx, row.id, secret).await?;
        let new_secret = if R::KIND.is_token() {
            let secret = preset_secret.unwrap_or_else(token::generate);
            tx.put_token_secret(row.id, &token::hash(&secret)).await?;
            Some(secret)
        } else {
            None
        };
        audit_change(
            &mut tx,
            caller,
            &change_action(R::KIND, "create"),
            &path,
            (None, Some(row.revision)),
            201,
        )
        .await?;
        let event = Event::intent_written(&path, "create", Some(row.revision));
        self.publish(&mut tx, event.into_iter().collect()).await?;
        tx.commit().await?;
        self.events_committed();
        self.access_changed(R::KIND);
        tracing::info!(resource = %path.url(), actor = %caller.principal.actor, "created");
        let cluster_check = match check_after {
            true => self.check_after_write(&path, caller).await,
            false => None,
        };
        let facts = StoredFacts {
            kubeconfig_stored: stored,
            new_secret,
            cluster_check,
            ..StoredFacts::default()
        };
        Ok((path, to_resource(&row, &facts)?))
    }

    pub async fn replace<R: Resource>(
        &self,
        path: &ResourcePath,
        body: R,
        if_match: Option<IfMatch>,
        caller: &Caller,
    ) -> Result<R> {
        let (metadata, spec) = body.into_parts();
        let metadata = metadata.writable();
        let spec = spec.with_name_defaults(&metadata.name);
        let key = path
            .key()
            .ok_or_else(|| Error::internal("replace", "empty path"))?;
        if metadata.name != key.name {
            return Err(Error::invalid_field(
                "/metadata/name",
                format!(
                    "must match the name in the URL (\"{}\"); resources cannot be renamed",
                    key.name
                ),
            ));
        }
        if spec.version() != key.version.as_ref() {
            return Err(Error::invalid_field(
                "/spec/version",
                format!(
                    "must match the version in the URL (\"{}\")",
                    key.version_str()
                ),
            ));
        }
        check_write_only(&spec)?;
        let new = new_resource(&metadata, &spec, caller)?;
        let secret = spec.secret_change();
        let check_after = matches!(secret, SecretChange::Set(_));

        let mut tx = self.store.begin_write().await?;
        let (rows, current) = self
            .lock_current(&mut tx, path, if_match.as_ref(), Some(&new.spec))
            .await?;
        let id = current.id;
        if R::KIND == Kind::Project {
            check_namespace_change(&current, &new.spec, &key.name, caller)?;
        }
        let checked = check_write(&mut tx, Ancestors { path, rows: &rows }, &new.spec).await?;
        let secret_same = self.secret_unchanged(&mut tx, id, &secret).await?;
        let unchanged = current.description == new.description
            && current.user_data1 == new.user_data1
            && current.user_data2 == new.user_data2
            && current.spec.0 == new.spec
            && secret_same;
        if !unchanged {
            let project_spec = (R::KIND == Kind::Project).then(|| new.spec.clone());
            let kubeconfig_action = match (&secret, secret_same) {
                (SecretChange::Set(_), false) => Some("kubeconfig.replace"),
                (SecretChange::Remove, false) => Some("kubeconfig.remove"),
                _ => None,
            };
            let after = new.spec.clone();
            tx.update(id, new).await?;
            store_refs(&mut tx, id, &checked.refs).await?;
            self.vips_after_write(&mut tx, path, &rows, id, false, checked.neighbourhood)
                .await?;
            self.claims_after_change(&mut tx, path, &rows, Some(&current.spec.0), Some(&after))
                .await?;
            if let Some(spec) = project_spec {
                tx = self.claim_namespaces(tx, id, &spec).await?;
            }
            self.apply_secret(&mut tx, id, secret).await?;
            let revisions = (Some(current.revision), Some(current.revision + 1));
            let action = change_action(R::KIND, "replace");
            audit_change(&mut tx, caller, &action, path, revisions, 200).await?;
            if let Some(action) = kubeconfig_action {
                audit_change(&mut tx, caller, action, path, revisions, 200).await?;
            }
            let event = Event::intent_written(path, "replace", revisions.1);
            self.publish(&mut tx, event.into_iter().collect()).await?;
        }
        let row = tx
            .by_id(id)
            .await?
            .ok_or_else(|| Error::internal("replace", "row vanished"))?;
        let mut facts = self
            .facts(&mut tx, R::KIND, std::slice::from_ref(&row))
            .await?;
        tx.commit().await?;
        if !unchanged {
            self.events_committed();
            self.access_changed(R::KIND);
            tracing::info!(resource = %path.url(), revision = row.revision, "replaced");
        }
        // An identical replace writes nothing, so it is not checked either (POST .../check is).
        if check_after
            && !unchanged
            && let Some(check) = self.check_after_write(path, caller).await
        {
            facts[0].cluster_check = Some(check);
        }
        to_resource(&row, &facts[0])
    }

    pub async fn delete(
        &self,
        path: &ResourcePath,
        cascade: bool,
        if_match: Option<IfMatch>,
        caller: &Caller,
    ) -> Result<Deleted> {
        let kind = path
            .kind()
            .ok_or_else(|| Error::internal("delete", "empty path"))?;
        let mut tx = self.store.begin_write().await?;
        let (rows, current) = self
            .lock_current(&mut tx, path, if_match.as_ref(), None)
            .await?;
        let id = current.id;
        self.check_not_deployed(&mut tx, path, id).await?;
        let held = self.claims_before_delete(&mut tx, path, id, &rows).await?;
        match tx.delete(id, cascade).await {
            Ok(()) => {
                // What the deleted resource needed is freed (an intent's VIPs go with its row).
                self.vips_after_delete(&mut tx, path, &rows).await?;
                self.claims_after_delete(&mut tx, held).await?;
                self.claims_after_change(&mut tx, path, &rows, Some(&current.spec.0), None)
                    .await?;
                let action = change_action(kind, "delete");
                audit_change(
                    &mut tx,
                    caller,
                    &action,
                    path,
                    (Some(current.revision), None),
                    204,
                )
                .await?;
                let event = Event::intent_written(path, "delete", None);
                self.publish(&mut tx, event.into_iter().collect()).await?;
                tx.commit().await?;
                self.events_committed();
                self.access_changed(kind);
                tracing::info!(resource = %path.url(), cascade, actor = %caller.principal.actor, "deleted");
                Ok(Deleted { id })
            }
            Err(StoreError::ForeignKey) => {
                // The failed statement ends the transaction on PostgreSQL; explain from a new one.
                drop(tx);
                Err(self.explain_in_use(path, id, cascade).await?)
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn explain_in_use(&self, path: &ResourcePath, id: Uuid, cascade: bool) -> Result<Error> {
        let mut tx = self.store.begin_read().await?;
        let mut reasons = Vec::new();
        let children = tx.count_children(id).await?;
        if children > 0 && !cascade {
            reasons.push(format!(
                "it has {children} child resource{}; delete them first or use ?cascade=true",
                if children == 1 { "" } else { "s" }
            ));
        }
        let referrers = tx.referrers(id).await?;
        if !referrers.is_empty() {
            let list: Vec<String> = referrers
                .iter()
                .map(|r| {
                    let noun =
                        Kind::from_code(&r.kind).map_or(r.kind.clone(), |k| k.noun().to_owned());
                    format!("{noun} \"{}\" ({})", r.name, r.field)
                })
                .collect();
            reasons.push(format!("it is referenced by {}", list.join(", ")));
        }
        if reasons.is_empty() {
            // With cascade, something inside the subtree is referenced from outside it.
            reasons.push(
                "a resource below it is referenced from outside; delete that reference first"
                    .into(),
            );
        }
        Ok(Error::Conflict(format!(
            "{path} cannot be deleted: {}",
            reasons.join("; ")
        )))
    }

    /// Whether a write leaves the stored secret as it is (sending the same kubeconfig again is
    /// not a change, so applying a document twice changes nothing).
    async fn secret_unchanged(&self, tx: &mut Tx, id: Uuid, change: &SecretChange) -> Result<bool> {
        Ok(match change {
            SecretChange::Keep => true,
            SecretChange::Remove => tx.credential(id).await?.is_none(),
            SecretChange::Set(kubeconfig) => match tx.credential(id).await? {
                Some(sealed) => self
                    .secrets
                    .open(&sealed, id.as_bytes())
                    .is_ok_and(|plain| plain == kubeconfig.expose().as_bytes()),
                None => false,
            },
        })
    }

    /// Stores, removes or keeps a cluster's kubeconfig. Returns whether one is stored after.
    async fn apply_secret(&self, tx: &mut Tx, id: Uuid, change: SecretChange) -> Result<bool> {
        match change {
            SecretChange::Keep => Ok(tx.credential(id).await?.is_some()),
            SecretChange::Remove => {
                tx.delete_credential(id).await?;
                Ok(false)
            }
            SecretChange::Set(kubeconfig) => {
                let sealed = self
                    .secrets
                    .seal(kubeconfig.expose().as_bytes(), id.as_bytes());
                tx.put_credential(id, &sealed).await?;
                Ok(true)
            }
        }
    }
}

impl Service {
    /// Makes the project own the namespaces of its `spec`. Another project's namespace is a
    /// 409 naming the owner; the primary key decides between two concurrent claims.
    async fn claim_namespaces(
        &self,
        mut tx: Tx,
        project: Uuid,
        spec: &serde_json::Value,
    ) -> Result<Tx> {
        let spec: ProjectSpec =
            serde_json::from_value(spec.clone()).map_err(|e| Error::internal("project spec", e))?;
        let wanted: Vec<String> = spec.namespaces.iter().map(|n| n.to_string()).collect();
        let taken = |owners: Vec<(String, String)>| {
            owners
                .into_iter()
                .find(|(ns, _)| wanted.contains(ns))
                .map(|(ns, owner)| {
                    Error::Conflict(format!(
                        "namespace \"{ns}\" belongs to project \"{owner}\"; a namespace can belong to one project only"
                    ))
                })
        };
        if let Some(conflict) = taken(tx.namespaces_owned_by_others(project).await?) {
            return Err(conflict);
        }
        match tx.claim_namespaces(project, &wanted).await {
            Ok(()) => Ok(tx),
            Err(StoreError::Duplicate) => {
                // Claimed by a transaction that committed meanwhile: ours is aborted (on
                // PostgreSQL), so name the owner from a fresh one.
                drop(tx);
                let mut read = self.store.begin_read().await?;
                let owners = read.namespaces_owned_by_others(project).await?;
                Err(taken(owners).unwrap_or_else(|| {
                    Error::Conflict(
                        "another project claimed one of these namespaces at the same moment; retry"
                            .into(),
                    )
                }))
            }
            Err(e) => Err(e.into()),
        }
    }
}

/// Changing which namespaces a project owns is for admins, whoever may edit the project.
fn check_namespace_change(
    current: &ResourceRow,
    new: &serde_json::Value,
    project: &crate::domain::names::Name,
    caller: &Caller,
) -> Result<()> {
    let namespaces = |v: &serde_json::Value| v.get("namespaces").cloned().unwrap_or_default();
    if namespaces(&current.spec.0) == namespaces(new) {
        return Ok(());
    }
    match decide(&caller.principal, Action::ChangeNamespaces, Some(project)) {
        Decision::Allow => Ok(()),
        Decision::Forbidden { needed } => Err(Error::Forbidden(format!(
            "changing spec.namespaces of project \"{project}\" needs {needed}"
        ))),
        Decision::Hidden => Err(Error::NotFound(format!(
            "project \"{project}\" does not exist"
        ))),
    }
}

fn check_precondition(
    path: &ResourcePath,
    row: &ResourceRow,
    if_match: Option<&IfMatch>,
) -> Result<()> {
    match if_match {
        Some(m) if !m.matches(row.revision) => Err(Error::PreconditionFailed(format!(
            "{path} is at revision {} (ETag {}); If-Match did not name it. Fetch it again and retry.",
            row.revision,
            etag(row.revision)
        ))),
        _ => Ok(()),
    }
}

fn check_write_only<S: SpecDefaults>(spec: &S) -> Result<()> {
    let mut v = Violations::new();
    spec.check_write_only(&mut v);
    v.into_result().map_err(Error::invalid)
}

fn duplicate(path: &ResourcePath) -> Error {
    let (kind, key) = path.segments().last().expect("non-empty path");
    let parent = path.parent();
    let scope = if kind.name_scope() == "intent" {
        " (inbound, outbound and route intents share one set of names, because generated object names derive from them)"
    } else {
        ""
    };
    let within = if parent.segments().is_empty() {
        String::new()
    } else {
        format!(" in {parent}")
    };
    let noun = if kind.name_scope() == "intent" {
        "an intent"
    } else {
        kind.noun()
    };
    Error::Conflict(format!("{noun} {key} already exists{within}{scope}"))
}

/// Replaces the references a resource holds.
async fn store_refs(tx: &mut Tx, id: Uuid, refs: &[(String, Uuid)]) -> Result<()> {
    refs_stored(tx.set_refs(id, refs).await)
}

/// Stores the references of a resource just created (it holds none yet).
async fn insert_refs(tx: &mut Tx, id: Uuid, refs: &[(String, Uuid)]) -> Result<()> {
    refs_stored(tx.insert_refs(id, refs).await)
}

fn refs_stored(result: std::result::Result<(), StoreError>) -> Result<()> {
    match result {
        Ok(()) => Ok(()),
        Err(StoreError::ForeignKey) => Err(Error::Conflict(
            "a resource this one refers to was deleted at the same moment; retry".into(),
        )),
        Err(e) => Err(e.into()),
    }
}

fn new_resource<S: serde::Serialize>(
    metadata: &Metadata,
    spec: &S,
    caller: &Caller,
) -> Result<NewResource> {
    Ok(NewResource {
        actor: caller.actor(),
        description: metadata.description.as_ref().map(|d| d.to_string()),
        user_data1: metadata.user_data1.as_ref().map(|d| d.to_string()),
        user_data2: metadata.user_data2.as_ref().map(|d| d.to_string()),
        spec: serde_json::to_value(spec).map_err(|e| Error::internal("serializing a spec", e))?,
    })
}

/// A stored row as its kind's envelope.
pub(crate) fn to_resource<R: Resource>(row: &ResourceRow, facts: &StoredFacts) -> Result<R> {
    fn text<T: TryFrom<String, Error = String>>(
        value: &Option<String>,
        what: &str,
        id: Uuid,
    ) -> Result<Option<T>> {
        value
            .clone()
            .map(T::try_from)
            .transpose()
            .map_err(|e| Error::internal(&format!("stored {what} of {id}"), e))
    }
    let metadata = Metadata {
        name: row
            .name
            .parse()
            .map_err(|e: String| Error::internal("stored name", e))?,
        description: text(&row.description, "description", row.id)?,
        user_data1: text(&row.user_data1, "userData1", row.id)?,
        user_data2: text(&row.user_data2, "userData2", row.id)?,
        uid: Some(row.id),
        revision: Some(row.revision),
        created_at: Some(row.created_at),
        updated_at: Some(row.updated_at),
        created_by: row.created_by.clone(),
        updated_by: row.updated_by.clone(),
    };
    Ok(R::from_parts(metadata, stored_spec(row)?, facts))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_match_uses_strong_comparison() {
        let parse = |h: &str| IfMatch::parse(h).unwrap();
        assert!(parse("*").matches(7));
        assert!(parse("\"7\"").matches(7));
        assert!(parse("\"6\", \"7\"").matches(7));
        assert!(!parse("W/\"7\"").matches(7));
        assert!(!parse("\"6\"").matches(7));
        // A comma inside a tag is part of it (RFC 9110 etagc); tabs are whitespace.
        assert!(parse("W/\"a,b\",\t\"7\"").matches(7));
        assert!(!parse("\"7,8\"").matches(7));
        assert_eq!(
            IfMatch::parse("7").unwrap_err(),
            "entity tags are quoted: send If-Match: \"7\" (got 7)"
        );
    }
}
