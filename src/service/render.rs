//! Rendering a stored set, and the VIP allocations its intents need.
//!
//! VIPs are stored by the write that makes them needed (`Service::store_vips`, called in the
//! write's transaction). A render only reads: a needed VIP without a stored allocation (a set
//! written before allocation moved to the write path, or a cluster whose range changed) gets the
//! address the next write would store, computed in memory by the same pure `plan_cluster`.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use ipnet::IpNet;
use uuid::Uuid;

use super::Service;
use super::context::{ModelIds, load_model};
use crate::domain::model::{IntentSetModel, SetAddress};
use crate::domain::names::{DnsName, Name};
use crate::domain::resource::{Key, Kind, ResourcePath};
use crate::domain::violations::FieldError;
use crate::error::{Error, Result};
use crate::generate::binding::{Binding, BindingError};
use crate::generate::{self, Manifests, RenderError, Subject, VipNeed, VipTable};
use crate::store::{ROOT_ID, ResourceRow, Tx, VipRow};

/// Attempts at allocating a cluster's VIPs when concurrent writes take the same addresses.
const VIP_ATTEMPTS: usize = 5;

/// A rendered set, with the model it was rendered from.
pub struct RenderedSet {
    pub model: IntentSetModel,
    pub vips: VipTable,
    pub manifests: Manifests,
}

impl Service {
    /// Renders the set at `path` in a read-only transaction: no lock, no insert. `cluster` (the
    /// raw `?cluster=` value) is checked first: a cluster that does not exist is a 404 before
    /// anything is loaded. Returns the rendered set and the parsed cluster.
    pub async fn render(
        &self,
        path: &ResourcePath,
        cluster: Option<&str>,
    ) -> Result<(RenderedSet, Option<Name>)> {
        let (mut tx, model, ids, cluster) = self.read_model(path, cluster).await?;
        let plan = generate::SetPlan::new(&model);
        let vips = stored_vips(&mut tx, &plan, &ids, path).await?;
        tx.commit().await?;
        let manifests = generate::render_plan(&plan, &vips).map_err(|e| render_error(path, e))?;
        Ok((
            RenderedSet {
                model,
                vips,
                manifests,
            },
            cluster,
        ))
    }

    /// A client's binding, from the render's one plan of the set (read-only, like `render`).
    /// The set must render: a binding into a set that cannot be deployed would point nowhere.
    pub async fn binding(
        &self,
        set_path: &ResourcePath,
        intent: &Name,
        client: &Name,
        cluster: Option<&str>,
    ) -> Result<Binding> {
        let (mut tx, model, ids, cluster) = self.read_model(set_path, cluster).await?;
        let plan = generate::SetPlan::new(&model);
        let vips = stored_vips(&mut tx, &plan, &ids, set_path).await?;
        tx.commit().await?;
        generate::render_plan(&plan, &vips).map_err(|e| render_error(set_path, e))?;
        generate::binding::binding(&plan, &vips, intent, client, cluster.as_ref()).map_err(|e| {
            match e {
                BindingError::NotFound(message) => Error::NotFound(message),
                BindingError::Ambiguous(message) => Error::invalid_field("cluster", message),
                BindingError::Render(errors) => render_error(set_path, errors),
            }
        })
    }

    /// Opens a read-only transaction, checks `cluster` (the raw `?cluster=` value) first and
    /// loads the model of the set at `path`.
    async fn read_model(
        &self,
        path: &ResourcePath,
        cluster: Option<&str>,
    ) -> Result<(Tx, IntentSetModel, ModelIds, Option<Name>)> {
        let mut tx = self.store.begin_read().await?;
        let cluster = cluster_filter(&mut tx, cluster).await?;
        let address = set_address(path)?;
        let rows = self.resolve_path(&mut tx, path).await?;
        let (set_id, composite_app_id) = set_ids(&rows)?;
        let (model, ids) = load_model(&mut tx, address, composite_app_id, set_id).await?;
        Ok((tx, model, ids, cluster))
    }

    /// Renders within a write transaction (a deploy): locks the set row, stores the VIPs the set
    /// needs, and renders; also returns the set's id.
    pub(crate) async fn render_in(
        &self,
        tx: &mut Tx,
        path: &ResourcePath,
    ) -> Result<(RenderedSet, Uuid)> {
        let address = set_address(path)?;
        let rows = self.resolve_path(tx, path).await?;
        let (set_id, composite_app_id) = set_ids(&rows)?;
        tx.lock(set_id).await?;
        let (model, ids) = load_model(tx, address, composite_app_id, set_id).await?;
        let plan = generate::SetPlan::new(&model);
        let needs = plan.vip_needs().map_err(|e| render_error(path, e))?;
        let vips = allocate(tx, &model, &ids, &needs)
            .await
            .map_err(|e| e.into_error(path))?;
        let manifests = generate::render_plan(&plan, &vips).map_err(|e| render_error(path, e))?;
        Ok((
            RenderedSet {
                model,
                vips,
                manifests,
            },
            set_id,
        ))
    }

    /// After a write of a resource at `path` (rows: its resolved ancestors, root first), stores
    /// the VIPs the sets it affects now need and frees the ones they no longer need, in the
    /// write's transaction. A set member affects its set; an app every set of its composite app.
    /// A set that cannot be rendered (or whose range is full) is left as it is: its render
    /// reports the problem, as before.
    pub(crate) async fn store_vips(
        &self,
        tx: &mut Tx,
        path: &ResourcePath,
        rows: &[ResourceRow],
    ) -> Result<()> {
        let Some(kind) = path.kind() else {
            return Ok(());
        };
        let row_of = |kind: Kind| {
            path.segments()
                .iter()
                .position(|(k, _)| *k == kind)
                .and_then(|i| rows.get(i))
        };
        let sets: Vec<(ResourcePath, Uuid, Uuid)> = match kind {
            Kind::InboundIntent
            | Kind::Client
            | Kind::SecurityIntent
            | Kind::OutboundIntent
            | Kind::RouteIntent => {
                let (Some(set_path), Some(ca), Some(set)) = (
                    path.ancestor(Kind::TrafficIntentSet),
                    row_of(Kind::CompositeApp),
                    row_of(Kind::TrafficIntentSet),
                ) else {
                    return Err(Error::internal("VIPs", "set member outside a set"));
                };
                // The set row is locked already (`lock_scope`).
                vec![(set_path, ca.id, set.id)]
            }
            Kind::App => {
                let (Some(ca_path), Some(ca)) = (
                    path.ancestor(Kind::CompositeApp),
                    row_of(Kind::CompositeApp),
                ) else {
                    return Err(Error::internal("VIPs", "app outside a composite app"));
                };
                let mut sets = Vec::new();
                for set in tx.children(ca.id, Kind::TrafficIntentSet).await? {
                    let key = Key {
                        name: set
                            .name
                            .parse()
                            .map_err(|e| Error::internal("stored set name", e))?,
                        version: None,
                    };
                    // Serialized with writes of the set's members, which lock the set row.
                    tx.lock(set.id).await?;
                    sets.push((ca_path.child(Kind::TrafficIntentSet, key), ca.id, set.id));
                }
                sets
            }
            _ => Vec::new(),
        };
        for (set_path, ca_id, set_id) in sets {
            let address = set_address(&set_path)?;
            let (model, ids) = load_model(tx, address, ca_id, set_id).await?;
            let Ok(needs) = generate::vip_needs(&model) else {
                continue;
            };
            match allocate(tx, &model, &ids, &needs).await {
                Ok(_) | Err(AllocationError::Render(_)) => {}
                Err(AllocationError::Other(e)) => return Err(e),
            }
        }
        Ok(())
    }
}

/// The stored VIPs the planned set needs (read-only: a missing one is reported, not allocated).
async fn stored_vips(
    tx: &mut Tx,
    plan: &generate::SetPlan<'_>,
    ids: &ModelIds,
    path: &ResourcePath,
) -> Result<VipTable> {
    let needs = plan.vip_needs().map_err(|e| render_error(path, e))?;
    read_vips(tx, plan.model, ids, &needs)
        .await
        .map_err(|e| e.into_error(path))
}

fn set_address(path: &ResourcePath) -> Result<SetAddress> {
    SetAddress::from_path(path).ok_or_else(|| Error::internal("render", "not a set path"))
}

/// The set's and its composite app's ids from the resolved set path.
fn set_ids(rows: &[ResourceRow]) -> Result<(Uuid, Uuid)> {
    match rows {
        [_, composite_app, .., set] => Ok((set.id, composite_app.id)),
        _ => Err(Error::internal("render", "not a set path")),
    }
}

/// The cluster a `?cluster=` parameter names, which must exist.
async fn cluster_filter(tx: &mut Tx, raw: Option<&str>) -> Result<Option<Name>> {
    let Some(raw) = raw else {
        return Ok(None);
    };
    let not_found = || Error::NotFound(format!("cluster \"{raw}\" does not exist"));
    let name: Name = raw.parse().map_err(|_| not_found())?;
    let key = Key {
        name: name.clone(),
        version: None,
    };
    tx.child(ROOT_ID, Kind::Cluster, &key)
        .await?
        .ok_or_else(not_found)?;
    Ok(Some(name))
}

/// Why a set's VIPs could not be planned or stored.
#[derive(Debug, thiserror::Error)]
enum AllocationError {
    /// A range has no free address left (a 422 naming the cluster).
    #[error("a VIP range is full")]
    Render(Vec<RenderError>),
    /// The store failed, or writes kept racing; the cause is kept.
    #[error(transparent)]
    Other(#[from] Error),
}

impl AllocationError {
    fn into_error(self, set: &ResourcePath) -> Error {
        match self {
            AllocationError::Render(errors) => render_error(set, errors),
            AllocationError::Other(e) => e,
        }
    }
}

impl From<crate::store::StoreError> for AllocationError {
    fn from(e: crate::store::StoreError) -> Self {
        AllocationError::Other(e.into())
    }
}

/// What allocating a set's VIPs on one cluster does, given the allocations stored there.
#[derive(Debug, Default, PartialEq, Eq)]
struct ClusterPlan {
    /// The address of each wanted host.
    table: BTreeMap<DnsName, IpAddr>,
    /// Hosts whose stored allocation is freed: no longer needed by this set, or out of range.
    free: Vec<String>,
    /// New allocations, in the order they were picked.
    store: Vec<VipRow>,
}

/// Plans one cluster's VIPs for a set: keeps stored allocations (of any set) that are in range,
/// frees the set's allocations it no longer needs and any wanted host's allocation outside the
/// range, and picks the missing addresses in `wanted` order with `vips::pick`. Pure: a read
/// computes with it the addresses a write stores.
fn plan_cluster(
    cluster_id: Uuid,
    range: IpNet,
    rows: Vec<VipRow>,
    set_intents: &BTreeSet<Uuid>,
    wanted: &[&VipNeed],
    intent_ids: &BTreeMap<Name, Uuid>,
) -> std::result::Result<ClusterPlan, RenderError> {
    let mut plan = ClusterPlan::default();
    let wanted_hosts: BTreeSet<&str> = wanted.iter().map(|n| n.host.as_str()).collect();
    let mut existing: BTreeMap<String, IpAddr> = BTreeMap::new();
    let mut taken: BTreeSet<IpAddr> = BTreeSet::new();
    for row in rows {
        let ip = row.address.parse::<IpAddr>().ok();
        let ours = set_intents.contains(&row.intent_id);
        let stale = ours && !wanted_hosts.contains(row.host.as_str());
        match ip {
            Some(ip) if range.contains(&ip) && !stale => {
                taken.insert(ip);
                existing.insert(row.host, ip);
            }
            _ if ours || wanted_hosts.contains(row.host.as_str()) => plan.free.push(row.host),
            Some(ip) => {
                taken.insert(ip);
            }
            None => {}
        }
    }
    for need in wanted {
        if plan.table.contains_key(&need.host) {
            continue;
        }
        if let Some(ip) = existing.get(need.host.as_str()) {
            plan.table.insert(need.host.clone(), *ip);
            continue;
        }
        let Some(ip) = generate::vips::pick(range, &taken, need.host.as_str()) else {
            return Err(RenderError::new(
                Subject::Cluster(need.cluster.clone()),
                "/spec/crossCluster/vipRange",
                format!("{range} has no free address left for {}", need.host),
            ));
        };
        taken.insert(ip);
        plan.table.insert(need.host.clone(), ip);
        plan.store.push(VipRow {
            cluster_id,
            host: need.host.to_string(),
            address: ip.to_string(),
            intent_id: intent_ids.get(&need.intent).copied().unwrap_or_default(),
        });
    }
    Ok(plan)
}

/// The needs of a set, by cluster.
fn by_cluster(needs: &BTreeSet<VipNeed>) -> BTreeMap<&Name, Vec<&VipNeed>> {
    let mut out: BTreeMap<&Name, Vec<&VipNeed>> = BTreeMap::new();
    for need in needs {
        out.entry(&need.cluster).or_default().push(need);
    }
    out
}

fn set_intents(ids: &ModelIds) -> BTreeSet<Uuid> {
    ids.intents.values().copied().collect()
}

/// The set's VIPs as stored, with missing ones computed as the next write would store them.
async fn read_vips(
    tx: &mut Tx,
    model: &IntentSetModel,
    ids: &ModelIds,
    needs: &BTreeSet<VipNeed>,
) -> std::result::Result<VipTable, AllocationError> {
    let ours = set_intents(ids);
    let mut table = VipTable::new();
    for (cluster, wanted) in by_cluster(needs) {
        let cluster_id = ids.clusters[cluster];
        let range = model.clusters[cluster].cross_cluster.vip_range.net();
        let rows = tx.vips_on_cluster(cluster_id).await?;
        let plan = plan_cluster(cluster_id, range, rows, &ours, &wanted, &ids.intents)
            .map_err(|e| AllocationError::Render(vec![e]))?;
        for (host, ip) in plan.table {
            table.insert((cluster.clone(), host), ip);
        }
    }
    Ok(table)
}

/// Stores what `plan_cluster` decides for every cluster (clusters where the set held VIPs but
/// needs none any more are cleaned too), reading again when a concurrent write took an address.
async fn allocate(
    tx: &mut Tx,
    model: &IntentSetModel,
    ids: &ModelIds,
    needs: &BTreeSet<VipNeed>,
) -> std::result::Result<VipTable, AllocationError> {
    let ours = set_intents(ids);
    let wanted_by_cluster = by_cluster(needs);
    let mut table = VipTable::new();
    for (cluster, cluster_id) in &ids.clusters {
        let wanted = wanted_by_cluster.get(cluster).cloned().unwrap_or_default();
        let range = model.clusters[cluster].cross_cluster.vip_range.net();
        let mut done = false;
        for _ in 0..VIP_ATTEMPTS {
            let rows = tx.vips_on_cluster(*cluster_id).await?;
            let plan = plan_cluster(*cluster_id, range, rows, &ours, &wanted, &ids.intents)
                .map_err(|e| AllocationError::Render(vec![e]))?;
            for host in &plan.free {
                tx.delete_vip(*cluster_id, host).await?;
            }
            let mut lost_race = false;
            for row in &plan.store {
                if !tx.insert_vip(row).await? {
                    lost_race = true;
                    break;
                }
            }
            if !lost_race {
                for (host, ip) in plan.table {
                    table.insert((cluster.clone(), host), ip);
                }
                done = true;
                break;
            }
        }
        if !done {
            return Err(AllocationError::Other(Error::Conflict(
                "VIPs could not be allocated because other writes kept taking the same addresses; retry".into(),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> Name {
        s.parse().unwrap()
    }

    fn need(host: &str, intent: &str) -> VipNeed {
        VipNeed {
            cluster: name("c"),
            host: DnsName::try_from(host.to_owned()).unwrap(),
            intent: name(intent),
        }
    }

    fn row(host: &str, address: &str, intent: Uuid) -> VipRow {
        VipRow {
            cluster_id: Uuid::nil(),
            host: host.into(),
            address: address.into(),
            intent_id: intent,
        }
    }

    #[test]
    fn plans_keep_free_and_pick_as_the_write_path_stores() {
        let range: IpNet = "240.240.0.0/16".parse().unwrap();
        let (ours, theirs) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let set_intents = BTreeSet::from([ours]);
        let intents = BTreeMap::from([(name("a"), ours)]);
        let wanted = [
            need("a.ns.svc", "a"),
            need("b.ns.svc", "a"),
            need("s.ns.svc", "a"),
        ];
        let wanted: Vec<&VipNeed> = wanted.iter().collect();
        let rows = vec![
            row("a.ns.svc", "240.240.0.7", ours),       // kept
            row("gone.ns.svc", "240.240.0.8", ours),    // ours, no longer needed: freed
            row("s.ns.svc", "10.0.0.1", theirs),        // wanted but out of range: freed
            row("other.ns.svc", "240.240.0.9", theirs), // another set's: kept as taken
        ];
        let plan = plan_cluster(
            Uuid::nil(),
            range,
            rows.clone(),
            &set_intents,
            &wanted,
            &intents,
        )
        .unwrap();
        assert_eq!(plan.free, ["gone.ns.svc", "s.ns.svc"]);
        assert_eq!(plan.table[&wanted[0].host].to_string(), "240.240.0.7");
        let hosts: Vec<&str> = plan.store.iter().map(|r| r.host.as_str()).collect();
        assert_eq!(hosts, ["b.ns.svc", "s.ns.svc"]);
        assert!(plan.store.iter().all(|r| r.intent_id == ours));
        assert!(plan.table.values().all(|ip| range.contains(ip)));
        let again = plan_cluster(Uuid::nil(), range, rows, &set_intents, &wanted, &intents);
        assert_eq!(again.unwrap(), plan, "the same rows give the same plan");
    }

    #[test]
    fn a_full_range_is_a_render_error_on_the_cluster() {
        let range: IpNet = "10.0.0.0/30".parse().unwrap();
        let intents = BTreeMap::from([(name("a"), Uuid::from_u128(1))]);
        let wanted = [
            need("a.ns.svc", "a"),
            need("b.ns.svc", "a"),
            need("c.ns.svc", "a"),
        ];
        let wanted: Vec<&VipNeed> = wanted.iter().collect();
        let error = plan_cluster(
            Uuid::nil(),
            range,
            Vec::new(),
            &BTreeSet::new(),
            &wanted,
            &intents,
        )
        .unwrap_err();
        assert_eq!(error.field, "/spec/crossCluster/vipRange");
        assert_eq!(error.subject, Subject::Cluster(name("c")));
    }
}
