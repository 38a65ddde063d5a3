//! Rendering a stored set: load it, allocate the VIPs it needs, run the generator.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use uuid::Uuid;

use super::Service;
use super::context::{ModelIds, load_model};
use crate::domain::model::{IntentSetModel, SetAddress};
use crate::domain::names::Name;
use crate::domain::resource::{Kind, ResourcePath};
use crate::domain::violations::FieldError;
use crate::error::{Error, Result};
use crate::generate::{self, Manifests, RenderError, Subject, VipNeed, VipTable};
use crate::store::{Tx, VipRow};

/// Attempts at allocating a cluster's VIPs when concurrent renders take the same addresses.
const VIP_ATTEMPTS: usize = 5;

/// A rendered set, with the model it was rendered from.
pub struct RenderedSet {
    pub model: IntentSetModel,
    pub vips: VipTable,
    pub manifests: Manifests,
}

impl Service {
    /// Loads the set at `path`, allocates (and keeps) the VIPs it needs, and renders it.
    pub async fn render(&self, path: &ResourcePath) -> Result<RenderedSet> {
        let mut tx = self.store.begin_write().await?;
        let (rendered, _) = self.render_in(&mut tx, path).await?;
        tx.commit().await?;
        Ok(rendered)
    }

    /// `render` within a write transaction (the set row is locked); also returns the set's id.
    pub(crate) async fn render_in(
        &self,
        tx: &mut Tx,
        path: &ResourcePath,
    ) -> Result<(RenderedSet, Uuid)> {
        let address = SetAddress::from_path(path)
            .ok_or_else(|| Error::internal("render", "not a set path"))?;
        let rows = self.resolve_path(tx, path).await?;
        let set_id = rows[rows.len() - 1].id;
        let composite_app_id = rows[1].id;
        tx.lock(set_id).await?;
        let (model, ids) = load_model(tx, address, composite_app_id, set_id).await?;
        let needs = generate::vips::needs(&model).map_err(|e| render_error(path, e))?;
        let vips = allocate(tx, &model, &ids, &needs)
            .await
            .map_err(|e| match e {
                AllocationError::Render(errors) => render_error(path, errors),
                AllocationError::Other(e) => e,
            })?;
        let manifests = generate::render(&model, &vips).map_err(|e| render_error(path, e))?;
        Ok((
            RenderedSet {
                model,
                vips,
                manifests,
            },
            set_id,
        ))
    }
}

enum AllocationError {
    Render(Vec<RenderError>),
    Other(Error),
}

impl From<crate::store::StoreError> for AllocationError {
    fn from(e: crate::store::StoreError) -> Self {
        AllocationError::Other(e.into())
    }
}

/// Keeps existing allocations, frees the set's allocations no longer needed, and allocates what
/// is missing. Addresses outside a cluster's current range are reallocated.
async fn allocate(
    tx: &mut Tx,
    model: &IntentSetModel,
    ids: &ModelIds,
    needs: &BTreeSet<VipNeed>,
) -> Result<VipTable, AllocationError> {
    let set_intents: BTreeSet<Uuid> = ids.intents.values().copied().collect();
    let mut by_cluster: BTreeMap<&Name, Vec<&VipNeed>> = BTreeMap::new();
    for need in needs {
        by_cluster.entry(&need.cluster).or_default().push(need);
    }
    // Clusters where the set held VIPs but needs none any more are cleaned too.
    let mut table = VipTable::new();
    for (cluster, cluster_id) in &ids.clusters {
        let wanted = by_cluster.get(cluster).cloned().unwrap_or_default();
        let range = model.clusters[cluster].cross_cluster.vip_range.net();
        let mut done = false;
        for _ in 0..VIP_ATTEMPTS {
            let rows = tx.vips_on_cluster(*cluster_id).await?;
            let wanted_hosts: BTreeSet<&str> = wanted.iter().map(|n| n.host.as_str()).collect();
            let mut existing: BTreeMap<String, IpAddr> = BTreeMap::new();
            let mut taken: BTreeSet<IpAddr> = BTreeSet::new();
            for row in rows {
                let ip = row.address.parse::<IpAddr>().ok();
                let stale = set_intents.contains(&row.intent_id)
                    && !wanted_hosts.contains(row.host.as_str());
                match ip {
                    Some(ip) if range.contains(&ip) && !stale => {
                        taken.insert(ip);
                        existing.insert(row.host, ip);
                    }
                    // Freed: no longer needed by this set, or outside the cluster's range now.
                    _ if set_intents.contains(&row.intent_id)
                        || wanted_hosts.contains(row.host.as_str()) =>
                    {
                        tx.delete_vip(*cluster_id, &row.host).await?;
                    }
                    Some(ip) => {
                        taken.insert(ip);
                    }
                    None => {}
                }
            }
            let mut lost_race = false;
            for need in &wanted {
                if let Some(ip) = existing.get(need.host.as_str()) {
                    table.insert((need.cluster.clone(), need.host.clone()), *ip);
                    continue;
                }
                let Some(ip) = generate::vips::pick(range, &taken, need.host.as_str()) else {
                    return Err(AllocationError::Render(vec![RenderError::new(
                        Subject::Cluster(need.cluster.clone()),
                        "/spec/crossCluster/vipRange",
                        format!("{range} has no free address left for {}", need.host),
                    )]));
                };
                let intent_id = ids.intents[&need.intent];
                let row = VipRow {
                    cluster_id: *cluster_id,
                    host: need.host.to_string(),
                    address: ip.to_string(),
                    intent_id,
                };
                if !tx.insert_vip(&row).await? {
                    lost_race = true;
                    break;
                }
                taken.insert(ip);
                table.insert((need.cluster.clone(), need.host.clone()), ip);
            }
            if !lost_race {
                done = true;
                break;
            }
        }
        if !done {
            return Err(AllocationError::Other(Error::Conflict(
                "VIPs could not be allocated because other renders kept taking the same addresses; retry".into(),
            )));
        }
    }
    Ok(table)
}

/// A render error as a 422, with each field named `<resource URL>#<pointer>`.
pub fn render_error(set: &ResourcePath, errors: Vec<RenderError>) -> Error {
    let ca = set
        .ancestor(Kind::CompositeApp)
        .unwrap_or_else(ResourcePath::root);
    let url = |subject: &Subject| -> String {
        match subject {
            Subject::Cluster(n) => format!("/v2/clusters/{n}"),
            Subject::App(n) => format!("{}/apps/{n}", ca.url()),
            Subject::Inbound(n) => format!("{}/inbound-intents/{n}", set.url()),
            Subject::Client(i, c) => format!("{}/inbound-intents/{i}/clients/{c}", set.url()),
            Subject::Outbound(n) => format!("{}/outbound-intents/{n}", set.url()),
            Subject::Route(n) => format!("{}/route-intents/{n}", set.url()),
        }
    };
    let errors: Vec<FieldError> = errors
        .iter()
        .map(|e| {
            FieldError::new(
                format!("{}#{}", url(&e.subject), e.field),
                format!("{}: {}", e.subject, e.message),
            )
        })
        .collect();
    let mut error = Error::invalid(errors);
    if let Error::Invalid { detail, .. } = &mut error {
        *detail = format!("{set} cannot be rendered: {detail}");
    }
    error
}
