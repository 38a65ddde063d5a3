//! Loading what a write is checked against, and the per-kind checks that need it.

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use uuid::Uuid;

use crate::domain::access::{GlobalTokenSpec, ProjectTokenSpec, TokenRole};
use crate::domain::app::{AppSpec, ProjectSpec};
use crate::domain::client::{ClientSpec, SecurityIntentSpec};
use crate::domain::cluster::ClusterSpec;
use crate::domain::inbound::InboundIntentSpec;
use crate::domain::model::{ClientModel, InboundModel, IntentSetModel, SetAddress};
use crate::domain::names::Name;
use crate::domain::outbound::OutboundIntentSpec;
use crate::domain::resource::{Key, Kind, ResourcePath};
use crate::domain::route::RouteIntentSpec;
use crate::domain::violations::FieldError;
use crate::domain::{rules, tenancy};
use crate::error::{Error, Result};
use crate::store::{ROOT_ID, ResourceRow, Tx};

use super::neighbourhood::{self, SetSite};

/// Parses a stored spec. Stored specs were valid when written; failing here is a bug or a
/// database edited by hand.
pub(crate) fn stored_spec<T: DeserializeOwned>(row: &ResourceRow) -> Result<T> {
    serde_json::from_value(row.spec.0.clone()).map_err(|e| {
        Error::internal(
            &format!(
                "stored {} \"{}\" ({}) does not parse",
                row.kind, row.name, row.id
            ),
            e,
        )
    })
}

/// A stored row's name (stored names were valid when written).
pub(crate) fn name_of(row: &ResourceRow) -> Result<Name> {
    row.name
        .parse()
        .map_err(|e| Error::internal(&format!("stored name of {}", row.id), e))
}

/// Database ids of the resources in a model, by name, for storing references.
#[derive(Debug, Default)]
pub(crate) struct ModelIds {
    pub clusters: BTreeMap<Name, Uuid>,
    pub apps: BTreeMap<Name, Uuid>,
    pub intents: BTreeMap<Name, Uuid>,
}

pub(crate) async fn load_clusters(
    tx: &mut Tx,
) -> Result<(BTreeMap<Name, ClusterSpec>, BTreeMap<Name, Uuid>)> {
    let mut specs = BTreeMap::new();
    let mut ids = BTreeMap::new();
    for row in tx.children(ROOT_ID, Kind::Cluster).await? {
        let name = name_of(&row)?;
        specs.insert(name.clone(), stored_spec(&row)?);
        ids.insert(name, row.id);
    }
    Ok((specs, ids))
}

/// Places stored rows into an `IntentSetModel`, recording their ids. Rows of a subtree come
/// parents first, so each client finds its inbound intent and each security intent its client.
pub(crate) struct ModelBuilder {
    pub model: IntentSetModel,
    pub ids: ModelIds,
    inbound_by_id: BTreeMap<Uuid, Name>,
    client_by_id: BTreeMap<Uuid, (Name, Name)>,
}

impl ModelBuilder {
    pub fn new(address: SetAddress) -> Self {
        Self {
            model: IntentSetModel::new(address),
            ids: ModelIds::default(),
            inbound_by_id: BTreeMap::new(),
            client_by_id: BTreeMap::new(),
        }
    }

    /// Adds every cluster.
    pub async fn load_clusters(&mut self, tx: &mut Tx) -> Result<()> {
        (self.model.clusters, self.ids.clusters) = load_clusters(tx).await?;
        Ok(())
    }

    pub fn apps(&mut self, rows: Vec<ResourceRow>) -> Result<()> {
        for row in rows {
            let name = name_of(&row)?;
            self.model
                .apps
                .insert(name.clone(), stored_spec::<AppSpec>(&row)?);
            self.ids.apps.insert(name, row.id);
        }
        Ok(())
    }

    /// Places set members (intents, clients, security intents); other kinds are skipped, and
    /// so is a client or security intent whose parent was not placed.
    pub fn members(&mut self, rows: Vec<ResourceRow>) -> Result<()> {
        for row in rows {
            self.member(&row)?;
        }
        Ok(())
    }

    fn member(&mut self, row: &ResourceRow) -> Result<()> {
        let Some(kind) = Kind::from_code(&row.kind) else {
            return Ok(());
        };
        let parent = row.parent_id.unwrap_or(ROOT_ID);
        let name = name_of(row)?;
        let model = &mut self.model;
        match kind {
            Kind::InboundIntent => {
                model.inbound.insert(
                    name.clone(),
                    InboundModel {
                        spec: stored_spec(row)?,
                        clients: BTreeMap::new(),
                    },
                );
                self.inbound_by_id.insert(row.id, name.clone());
                self.ids.intents.insert(name, row.id);
            }
            Kind::OutboundIntent => {
                model.outbound.insert(name.clone(), stored_spec(row)?);
                self.ids.intents.insert(name, row.id);
            }
            Kind::RouteIntent => {
                model.routes.insert(name.clone(), stored_spec(row)?);
                self.ids.intents.insert(name, row.id);
            }
            Kind::Client => {
                let Some(inbound) = self.inbound_by_id.get(&parent) else {
                    return Ok(());
                };
                if let Some(i) = model.inbound.get_mut(inbound) {
                    i.clients.insert(
                        name.clone(),
                        ClientModel {
                            spec: stored_spec(row)?,
                            security_intents: BTreeMap::new(),
                        },
                    );
                }
                self.client_by_id.insert(row.id, (inbound.clone(), name));
            }
            Kind::SecurityIntent => {
                let Some((inbound, client)) = self.client_by_id.get(&parent) else {
                    return Ok(());
                };
                if let Some(c) = model
                    .inbound
                    .get_mut(inbound)
                    .and_then(|i| i.clients.get_mut(client))
                {
                    c.security_intents.insert(name, stored_spec(row)?);
                }
            }
            _ => {}
        }
        Ok(())
    }

    pub fn finish(self) -> (IntentSetModel, ModelIds) {
        (self.model, self.ids)
    }
}

/// Loads a traffic intent set with its composite app's apps and every cluster.
pub(crate) async fn load_model(
    tx: &mut Tx,
    address: SetAddress,
    composite_app_id: Uuid,
    set_id: Uuid,
) -> Result<(IntentSetModel, ModelIds)> {
    let mut builder = ModelBuilder::new(address);
    builder.load_clusters(tx).await?;
    builder.apps(tx.children(composite_app_id, Kind::App).await?)?;
    builder.members(tx.subtree(set_id).await?)?;
    Ok(builder.finish())
}

/// A reference a resource holds, resolved to the target's id.
pub(crate) type Reference = (String, Uuid);

/// What a set member's write was checked against: the rows of its set its rule read, with the
/// write applied (ids of what the write creates are not in `ids` yet).
pub(crate) struct Neighbourhood {
    pub site: SetSite,
    pub model: IntentSetModel,
    pub ids: ModelIds,
}

/// A checked write: the references to store, and for a set member its neighbourhood.
pub(crate) struct Checked {
    pub refs: Vec<Reference>,
    pub neighbourhood: Option<Neighbourhood>,
}

impl Checked {
    fn refs(refs: Vec<Reference>) -> Self {
        Self {
            refs,
            neighbourhood: None,
        }
    }
}

/// The resolved ancestors of a resource being written (root first; the resource itself is
/// included when it exists).
pub(crate) struct Ancestors<'a> {
    pub path: &'a ResourcePath,
    pub rows: &'a [ResourceRow],
}

impl Ancestors<'_> {
    pub fn row(&self, kind: Kind) -> Option<&ResourceRow> {
        let index = self.path.segments().iter().position(|(k, _)| *k == kind)?;
        self.rows.get(index)
    }

    fn name(&self, kind: Kind) -> Result<Name> {
        Ok(self
            .path
            .find(kind)
            .ok_or_else(|| Error::internal("path", format!("no {kind} in {}", self.path.url())))?
            .name
            .clone())
    }
}

/// A token cannot be created already expired.
fn expiry_errors(expires_at: Option<chrono::DateTime<chrono::Utc>>) -> Vec<FieldError> {
    match expires_at {
        Some(at) if at <= chrono::Utc::now() => vec![FieldError::new(
            "/spec/expiresAt",
            format!("must be in the future (got {})", at.to_rfc3339()),
        )],
        _ => Vec::new(),
    }
}

fn invalid_or(errors: Vec<FieldError>, refs: Vec<Reference>) -> Result<Vec<Reference>> {
    if errors.is_empty() {
        Ok(refs)
    } else {
        Err(Error::invalid(errors))
    }
}

fn parse<T: DeserializeOwned>(spec: &serde_json::Value) -> Result<T> {
    serde_json::from_value(spec.clone()).map_err(|e| Error::internal("re-reading a parsed spec", e))
}

/// Checks a write (create or replace) of the resource at `ancestors.path` with `spec` against
/// what it refers to, and returns the references to store.
pub(crate) async fn check_write(
    tx: &mut Tx,
    ancestors: Ancestors<'_>,
    spec: &serde_json::Value,
) -> Result<Checked> {
    let kind = ancestors
        .path
        .kind()
        .ok_or_else(|| Error::internal("path", "empty"))?;
    let name = ancestors.name(kind)?;
    let refs = match kind {
        Kind::CompositeApp
        | Kind::TrafficIntentSet
        | Kind::GlobalRoleBinding
        | Kind::ProjectRoleBinding => Ok(Vec::new()),
        Kind::ProjectToken => {
            let token: ProjectTokenSpec = parse(spec)?;
            invalid_or(expiry_errors(token.expires_at), Vec::new())
        }
        Kind::Cluster => {
            let cluster: ClusterSpec = parse(spec)?;
            let owners: BTreeMap<String, String> =
                tx.namespace_owners().await?.into_iter().collect();
            invalid_or(
                tenancy::check_cluster_gateways(&cluster, &owners),
                Vec::new(),
            )
        }
        Kind::Project => {
            let project: ProjectSpec = parse(spec)?;
            let (clusters, _) = load_clusters(tx).await?;
            invalid_or(
                tenancy::check_project_namespaces(&project, &clusters),
                Vec::new(),
            )
        }
        Kind::GlobalToken => {
            let token: GlobalTokenSpec = parse(spec)?;
            let mut errors = expiry_errors(token.expires_at);
            let mut refs = Vec::new();
            for (i, role) in token.roles.iter().enumerate() {
                let TokenRole::Project(grant) = role else {
                    continue;
                };
                let key = Key {
                    name: grant.project.clone(),
                    version: None,
                };
                match tx.child(ROOT_ID, Kind::Project, &key).await? {
                    // Held as a reference, so that the project cannot be deleted (and another
                    // one created under its name) while the token grants a role in it.
                    Some(row) => refs.push((format!("/spec/roles/{i}/project"), row.id)),
                    None => errors.push(FieldError::new(
                        format!("/spec/roles/{i}/project"),
                        format!("project \"{}\" does not exist", grant.project),
                    )),
                }
            }
            invalid_or(errors, refs)
        }
        Kind::App => {
            let app: AppSpec = parse(spec)?;
            let (clusters, ids) = load_clusters(tx).await?;
            let project = ancestors
                .row(Kind::Project)
                .ok_or_else(|| Error::internal("path", "project unresolved"))?;
            let owned = tx.owned_namespaces(project.id).await?;
            let mut errors = rules::check_app(&app, &clusters);
            errors.extend(tenancy::check_app_namespace(
                &app,
                &ancestors.name(Kind::Project)?,
                &owned,
            ));
            let refs = app
                .placement
                .clusters
                .iter()
                .flatten()
                .enumerate()
                .filter_map(|(i, c)| {
                    ids.get(c)
                        .map(|id| (format!("/spec/placement/clusters/{i}"), *id))
                })
                .collect();
            invalid_or(errors, refs)
        }
        Kind::InboundIntent
        | Kind::Client
        | Kind::SecurityIntent
        | Kind::OutboundIntent
        | Kind::RouteIntent => return check_set_member(tx, &ancestors, kind, name, spec).await,
    };
    Ok(Checked::refs(refs?))
}

/// The set a member at `ancestors.path` belongs to.
pub(crate) fn set_site(ancestors: &Ancestors<'_>) -> Result<SetSite> {
    Ok(SetSite {
        address: SetAddress::from_path(ancestors.path)
            .ok_or_else(|| Error::internal("path", "no traffic intent set"))?,
        composite_app: ancestors
            .row(Kind::CompositeApp)
            .ok_or_else(|| Error::internal("path", "composite app unresolved"))?
            .id,
        set: ancestors
            .row(Kind::TrafficIntentSet)
            .ok_or_else(|| Error::internal("path", "set unresolved"))?
            .id,
    })
}

/// Checks a set member against its neighbourhood (`neighbourhood`: only the rows its rule
/// reads), with the write applied. Returns the references to store and the neighbourhood, from
/// which the write derives what it changes (VIPs).
async fn check_set_member(
    tx: &mut Tx,
    ancestors: &Ancestors<'_>,
    kind: Kind,
    name: Name,
    spec: &serde_json::Value,
) -> Result<Checked> {
    let site = set_site(ancestors)?;
    let own = ancestors.row(kind).map(|r| r.id);
    let (refs, errors, builder) = match kind {
        Kind::InboundIntent => {
            let spec: InboundIntentSpec = parse(spec)?;
            let mut b = neighbourhood::inbound(tx, &site, own, &spec).await?;
            let refs = app_ref(&b.ids, "/spec/app", &spec.app)
                .into_iter()
                .collect();
            b.model
                .inbound
                .entry(name.clone())
                .and_modify(|m| m.spec = spec.clone())
                .or_insert(InboundModel {
                    spec,
                    clients: BTreeMap::new(),
                });
            (refs, rules::check_inbound(&b.model, &name), b)
        }
        Kind::Client => {
            let spec: ClientSpec = parse(spec)?;
            let inbound = ancestors.name(Kind::InboundIntent)?;
            let parent = ancestors
                .row(Kind::InboundIntent)
                .ok_or_else(|| Error::internal("path", "inbound intent unresolved"))?
                .id;
            let mut b = neighbourhood::inbound_with_clients(tx, &site, parent, Some(&spec)).await?;
            let refs = app_ref(&b.ids, "/spec/app", &spec.app)
                .into_iter()
                .collect();
            if let Some(parent) = b.model.inbound.get_mut(&inbound) {
                parent
                    .clients
                    .entry(name.clone())
                    .and_modify(|c| c.spec = spec.clone())
                    .or_insert(ClientModel {
                        spec,
                        security_intents: BTreeMap::new(),
                    });
            }
            (refs, rules::check_client(&b.model, &inbound, &name), b)
        }
        Kind::SecurityIntent => {
            let spec: SecurityIntentSpec = parse(spec)?;
            let inbound = ancestors.name(Kind::InboundIntent)?;
            let client = ancestors.name(Kind::Client)?;
            let (Some(inbound_row), Some(client_row)) = (
                ancestors.row(Kind::InboundIntent),
                ancestors.row(Kind::Client),
            ) else {
                return Err(Error::internal("path", "client unresolved"));
            };
            let mut b = neighbourhood::security_intent(&site, inbound_row, client_row)?;
            if let Some(c) = b
                .model
                .inbound
                .get_mut(&inbound)
                .and_then(|i| i.clients.get_mut(&client))
            {
                c.security_intents.insert(name.clone(), spec);
            }
            let errors = rules::check_security_intent(&b.model, &inbound, &client, &name);
            (Vec::new(), errors, b)
        }
        Kind::OutboundIntent => {
            let spec: OutboundIntentSpec = parse(spec)?;
            let mut b = neighbourhood::outbound(tx, &site, own, &spec).await?;
            let refs = spec
                .clients
                .iter()
                .enumerate()
                .filter_map(|(i, app)| app_ref(&b.ids, &format!("/spec/clients/{i}"), app))
                .collect();
            b.model.outbound.insert(name.clone(), spec);
            (refs, rules::check_outbound(&b.model, &name), b)
        }
        Kind::RouteIntent => {
            let spec: RouteIntentSpec = parse(spec)?;
            let mut b = neighbourhood::route(tx, &site, &spec).await?;
            let target = spec
                .target
                .inbound_intent
                .as_ref()
                .map(|t| (neighbourhood::ROUTE_TO_INBOUND, t))
                .or(spec
                    .target
                    .outbound_intent
                    .as_ref()
                    .map(|t| (neighbourhood::ROUTE_TO_OUTBOUND, t)));
            let refs = target
                .and_then(|(field, t)| b.ids.intents.get(t).map(|id| (field.to_owned(), *id)))
                .into_iter()
                .collect();
            b.model.routes.insert(name.clone(), spec);
            (refs, rules::check_route(&b.model, &name), b)
        }
        _ => return Ok(Checked::refs(Vec::new())),
    };
    let refs = invalid_or(errors, refs)?;
    let (model, ids) = builder.finish();
    Ok(Checked {
        refs,
        neighbourhood: Some(Neighbourhood { site, model, ids }),
    })
}

fn app_ref(ids: &ModelIds, field: &str, app: &Name) -> Option<Reference> {
    ids.apps.get(app).map(|id| (field.to_owned(), *id))
}
