//! A stored set as an intent document (SPEC section 5), ready for git and offline rendering.

use std::collections::{BTreeMap, BTreeSet};

use uuid::Uuid;

use super::Service;
use super::context::{load_model, name_of};
use super::crud::to_resource;
use crate::domain::document::{
    DocClient, DocCompositeApp, DocInboundIntent, DocIntentSet, DocProject, IntentDocument,
};
use crate::domain::envelopes::{
    App, Client, Cluster, CompositeApp, InboundIntent, OutboundIntent, Project, Resource,
    RouteIntent, SecurityIntent, StoredFacts, TrafficIntentSet,
};
use crate::domain::model::SetAddress;
use crate::domain::resource::{Kind, ResourcePath};
use crate::error::{Error, Result};
use crate::store::{ROOT_ID, ResourceRow, Tx};

/// A row as its envelope, without server-set metadata (a document is written by people).
fn plain<R: Resource>(row: &ResourceRow) -> Result<R> {
    let resource: R = to_resource(row, &StoredFacts::default())?;
    let (metadata, spec) = resource.into_parts();
    Ok(R::from_parts(
        metadata.writable(),
        spec,
        &StoredFacts::default(),
    ))
}

impl Service {
    /// The set at `path` with its project, composite app, apps and the clusters they run on.
    /// Kubeconfigs are never part of it.
    pub async fn export_document(&self, path: &ResourcePath) -> Result<IntentDocument> {
        let mut tx = self.store.begin_read().await?;
        let rows = self.resolve_path(&mut tx, path).await?;
        let document = self.stored_document(&mut tx, &rows).await?;
        tx.commit().await?;
        Ok(document)
    }

    /// The document of the set whose resolved path is `rows` (project, composite app, set).
    pub(crate) async fn stored_document(
        &self,
        tx: &mut Tx,
        rows: &[ResourceRow],
    ) -> Result<IntentDocument> {
        let [project_row, ca_row, set_row] = rows else {
            return Err(Error::internal("export", "not a set path"));
        };
        let address = SetAddress {
            project: name_of(project_row)?,
            composite_app: name_of(ca_row)?,
            version: ca_row
                .version
                .parse()
                .map_err(|e: String| Error::internal("stored composite app version", e))?,
            set: name_of(set_row)?,
        };
        let (model, _) = load_model(tx, address, ca_row.id, set_row.id).await?;
        let placed: BTreeSet<&str> = model
            .apps
            .values()
            .flat_map(|app| model.app_clusters(app))
            .map(|n| n.as_str())
            .collect();
        let clusters = tx
            .children(ROOT_ID, Kind::Cluster)
            .await?
            .iter()
            .filter(|r| placed.contains(r.name.as_str()))
            .map(|r| {
                let mut cluster: Cluster = plain(r)?;
                cluster.status = None;
                Ok(cluster)
            })
            .collect::<Result<Vec<_>>>()?;
        let apps = tx
            .children(ca_row.id, Kind::App)
            .await?
            .iter()
            .map(plain::<App>)
            .collect::<Result<Vec<_>>>()?;
        let subtree = tx.subtree(set_row.id).await?;
        // Grouped once by (parent, kind), in name order: a set holds tens of thousands of rows.
        let mut grouped: BTreeMap<(Uuid, &str), Vec<&ResourceRow>> = BTreeMap::new();
        for row in &subtree {
            if let Some(parent) = row.parent_id {
                grouped
                    .entry((parent, row.kind.as_str()))
                    .or_default()
                    .push(row);
            }
        }
        for rows in grouped.values_mut() {
            rows.sort_by(|a, b| a.name.cmp(&b.name));
        }
        let children = |parent: Uuid, kind: Kind| -> Vec<&ResourceRow> {
            grouped
                .get(&(parent, kind.code()))
                .cloned()
                .unwrap_or_default()
        };
        let mut inbound_intents = Vec::new();
        for row in children(set_row.id, Kind::InboundIntent) {
            let inbound: InboundIntent = plain(row)?;
            let mut clients = Vec::new();
            for client_row in children(row.id, Kind::Client) {
                let client: Client = plain(client_row)?;
                let security_intents = children(client_row.id, Kind::SecurityIntent)
                    .into_iter()
                    .map(plain::<SecurityIntent>)
                    .collect::<Result<Vec<_>>>()?;
                clients.push(DocClient {
                    metadata: client.metadata,
                    spec: client.spec,
                    security_intents,
                });
            }
            inbound_intents.push(DocInboundIntent {
                metadata: inbound.metadata,
                spec: inbound.spec,
                clients,
            });
        }
        let outbound_intents = children(set_row.id, Kind::OutboundIntent)
            .into_iter()
            .map(plain::<OutboundIntent>)
            .collect::<Result<Vec<_>>>()?;
        let route_intents = children(set_row.id, Kind::RouteIntent)
            .into_iter()
            .map(plain::<RouteIntent>)
            .collect::<Result<Vec<_>>>()?;
        let project: Project = plain(project_row)?;
        let composite_app: CompositeApp = plain(ca_row)?;
        let set: TrafficIntentSet = plain(set_row)?;
        Ok(IntentDocument {
            clusters,
            projects: vec![DocProject {
                metadata: project.metadata,
                spec: project.spec,
                composite_apps: vec![DocCompositeApp {
                    metadata: composite_app.metadata,
                    spec: composite_app.spec,
                    apps,
                    traffic_intent_sets: vec![DocIntentSet {
                        metadata: set.metadata,
                        spec: set.spec,
                        inbound_intents,
                        outbound_intents,
                        route_intents,
                    }],
                }],
            }],
        })
    }
}
