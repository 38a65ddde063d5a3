//! The VIP allocations a set's intents need, stored by the write that makes them needed.
//!
//! A write to an intent (or to a client, which changes where its inbound intent is reached
//! from) re-plans that one intent: it reads the allocations the plan can touch (the intent's
//! own, those of the hosts it wants, and those at the first addresses each host would probe)
//! and stores the difference, so its cost does not depend on the size of the set. A write to an
//! app or a cluster can change every intent of the sets that use it, and re-plans those sets
//! whole. Renders only read (`read_vips`): a VIP that is needed but not stored gets the
//! address the next write would store, computed by the same pure `plan_cluster`.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use ipnet::IpNet;
use uuid::Uuid;

use super::Service;
use super::context::{ModelIds, Neighbourhood, load_clusters, load_model};
use super::neighbourhood::{self, SetSite};
use super::render::render_error;
use crate::domain::model::{IntentSetModel, SetAddress};
use crate::domain::names::{DnsName, Name};
use crate::domain::resource::{Kind, ResourcePath};
use crate::error::{Error, Result};
use crate::generate::{self, RenderError, Subject, VipNeed, VipTable};
use crate::store::{ResourceRow, SetLocation, Tx, VipProbe, VipRow};

/// Attempts at allocating VIPs when concurrent writes take the same addresses.
const VIP_ATTEMPTS: usize = 5;

/// How many addresses of each host's probe sequence an intent's write reads. A host lands past
/// them only in a nearly full range; then the write reads the whole cluster instead.
const PROBED_ADDRESSES: usize = 16;

/// Above this many bound values, an intent's write reads whole clusters instead (databases
/// limit the parameters of one statement).
const MAX_PROBE_PARAMETERS: usize = 10_000;

impl Service {
    /// After a create or replace of the resource at `path` (rows: its resolved ancestors, root
    /// first; `written`: its id, `created` unless replaced), stores the VIPs now needed and frees those no longer needed,
    /// in the write's transaction. `neighbourhood` is what a set member was checked against.
    /// An intent that cannot be planned (or whose range is full) is left as it is: the set's
    /// render reports the problem.
    pub(crate) async fn vips_after_write(
        &self,
        tx: &mut Tx,
        path: &ResourcePath,
        rows: &[ResourceRow],
        written: Uuid,
        created: bool,
        neighbourhood: Option<Neighbourhood>,
    ) -> Result<()> {
        let Some((kind, key)) = path.segments().last() else {
            return Ok(());
        };
        match (kind, neighbourhood) {
            (Kind::InboundIntent, Some(n))
                if n.model
                    .inbound
                    .get(&key.name)
                    .is_some_and(|i| i.clients.is_empty()) =>
            {
                // No clients, no VIPs: nothing to read; a replace frees what it held.
                if !created {
                    tx.delete_vips_of(written).await?;
                }
                Ok(())
            }
            (Kind::InboundIntent | Kind::OutboundIntent, Some(mut n)) => {
                n.ids.intents.insert(key.name.clone(), written);
                allocate_intent(tx, n, &key.name).await
            }
            (Kind::Client, Some(n)) => {
                let inbound = parent_intent(path)?;
                allocate_intent(tx, n, &inbound).await
            }
            _ => self.vips_of_sets(tx, path, rows).await,
        }
    }

    /// After a delete of the resource at `path`: an intent's VIPs went with its row; a client's
    /// inbound intent is re-planned; an app's or a cluster's sets are re-planned whole.
    pub(crate) async fn vips_after_delete(
        &self,
        tx: &mut Tx,
        path: &ResourcePath,
        rows: &[ResourceRow],
    ) -> Result<()> {
        match path.kind() {
            Some(Kind::Client) => {
                let index = path
                    .segments()
                    .iter()
                    .position(|(k, _)| *k == Kind::InboundIntent);
                let (Some(inbound), Some(site)) =
                    (index.and_then(|i| rows.get(i)), site(path, rows))
                else {
                    return Err(Error::internal("VIPs", "client outside an inbound intent"));
                };
                let b = neighbourhood::inbound_with_clients(tx, &site, inbound.id, None).await?;
                let (model, ids) = b.finish();
                let name = parent_intent(path)?;
                allocate_intent(tx, Neighbourhood { site, model, ids }, &name).await
            }
            _ => self.vips_of_sets(tx, path, rows).await,
        }
    }

    /// Re-plans the sets an app (those of its composite app) or a cluster (every set) can
    /// change. Set rows are locked in id order, as every writer of several sets does.
    async fn vips_of_sets(
        &self,
        tx: &mut Tx,
        path: &ResourcePath,
        rows: &[ResourceRow],
    ) -> Result<()> {
        let sets = match path.kind() {
            Some(Kind::App) => {
                let index = path
                    .segments()
                    .iter()
                    .position(|(k, _)| *k == Kind::CompositeApp);
                let Some(ca) = index.and_then(|i| rows.get(i)) else {
                    return Err(Error::internal("VIPs", "app outside a composite app"));
                };
                tx.sets(Some(ca.id)).await?
            }
            Some(Kind::Cluster) => tx.sets(None).await?,
            _ => return Ok(()),
        };
        for set in sets {
            tx.lock(set.set_id).await?;
            let (model, ids) =
                load_model(tx, set_address(&set)?, set.composite_app_id, set.set_id).await?;
            let plan = generate::SetPlan::new(&model);
            let Ok(needs) = plan.vip_needs() else {
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

pub(crate) fn set_address(set: &SetLocation) -> Result<SetAddress> {
    let parse = |what: &str, raw: &str| -> Result<Name> {
        raw.parse()
            .map_err(|e: String| Error::internal(&format!("stored {what} name"), e))
    };
    Ok(SetAddress {
        project: parse("project", &set.project_name)?,
        composite_app: parse("composite app", &set.composite_app_name)?,
        version: set
            .version
            .parse()
            .map_err(|e: String| Error::internal("stored composite app version", e))?,
        set: parse("set", &set.set_name)?,
    })
}

fn site(path: &ResourcePath, rows: &[ResourceRow]) -> Option<SetSite> {
    let row = |kind: Kind| {
        let i = path.segments().iter().position(|(k, _)| *k == kind)?;
        rows.get(i)
    };
    Some(SetSite {
        address: SetAddress::from_path(path)?,
        composite_app: row(Kind::CompositeApp)?.id,
        set: row(Kind::TrafficIntentSet)?.id,
    })
}

fn parent_intent(path: &ResourcePath) -> Result<Name> {
    Ok(path
        .find(Kind::InboundIntent)
        .ok_or_else(|| Error::internal("VIPs", "client outside an inbound intent"))?
        .name
        .clone())
}

/// Re-plans the VIPs of one intent of `n` (an inbound or outbound intent) and stores the
/// difference, reading only the allocations its plan can touch.
async fn allocate_intent(tx: &mut Tx, n: Neighbourhood, intent: &Name) -> Result<()> {
    let Some(&intent_id) = n.ids.intents.get(intent) else {
        return Err(Error::internal(
            "VIPs",
            format!("intent \"{intent}\" has no id"),
        ));
    };
    let mut model = IntentSetModel::new(n.site.address);
    let (clusters, cluster_ids) = load_clusters(tx).await?;
    model.clusters = clusters;
    model.apps = n.model.apps;
    if let Some(inbound) = n.model.inbound.get(intent) {
        model.inbound.insert(intent.clone(), inbound.clone());
    } else if let Some(outbound) = n.model.outbound.get(intent) {
        model.outbound.insert(intent.clone(), outbound.clone());
    }
    let Ok(needs) = generate::SetPlan::new(&model).vip_needs() else {
        return Ok(());
    };
    let ours = BTreeSet::from([intent_id]);
    let intent_ids = BTreeMap::from([(intent.clone(), intent_id)]);
    let cluster_names: BTreeMap<Uuid, &Name> = cluster_ids.iter().map(|(n, id)| (*id, n)).collect();
    let wanted_by_cluster = by_cluster(&needs);
    for _ in 0..VIP_ATTEMPTS {
        let probes = probes(&model, &cluster_ids, &wanted_by_cluster);
        // Without probes this still reads the intent's own allocations, to free them.
        let rows = tx
            .vips_near(intent_id, probes.as_deref().unwrap_or_default())
            .await?;
        let mut rows_by_cluster: BTreeMap<Uuid, Vec<VipRow>> = BTreeMap::new();
        for row in rows {
            rows_by_cluster.entry(row.cluster_id).or_default().push(row);
        }
        for cluster in wanted_by_cluster.keys() {
            rows_by_cluster.entry(cluster_ids[*cluster]).or_default();
        }
        let mut free: Vec<(Uuid, String)> = Vec::new();
        let mut store: Vec<VipRow> = Vec::new();
        for (cluster_id, mut rows) in rows_by_cluster {
            let Some(cluster) = cluster_names.get(&cluster_id) else {
                continue;
            };
            let wanted = wanted_by_cluster.get(*cluster).cloned().unwrap_or_default();
            let range = model.clusters[*cluster].cross_cluster.vip_range.net();
            let probed = |plan: &ClusterPlan| {
                plan.store.iter().all(|row| {
                    row.address.parse().is_ok_and(|ip| {
                        generate::vips::candidates(range, &row.host, PROBED_ADDRESSES).contains(&ip)
                    })
                })
            };
            let mut plan =
                match plan_cluster(cluster_id, range, rows.clone(), &ours, &wanted, &intent_ids) {
                    Ok(plan) => plan,
                    Err(_) => return Ok(()),
                };
            if probes.is_none() || !probed(&plan) {
                // Past the probed addresses (or too many to probe): plan from the whole cluster.
                rows = tx.vips_on_cluster(cluster_id).await?;
                plan = match plan_cluster(cluster_id, range, rows, &ours, &wanted, &intent_ids) {
                    Ok(plan) => plan,
                    Err(_) => return Ok(()),
                };
            }
            free.extend(plan.free.into_iter().map(|host| (cluster_id, host)));
            store.extend(plan.store);
        }
        tx.delete_vips(&free).await?;
        if tx.insert_vips(&store).await? == store.len() as u64 {
            return Ok(());
        }
        // A concurrent write took one of the addresses: read again and re-plan.
    }
    Err(Error::Conflict(
        "VIPs could not be allocated because other writes kept taking the same addresses; retry"
            .into(),
    ))
}

/// Where an intent's plan looks on each cluster it wants VIPs on: its hosts, and the first
/// addresses each host probes. `None` when that is too many values for one statement.
fn probes(
    model: &IntentSetModel,
    cluster_ids: &BTreeMap<Name, Uuid>,
    wanted: &BTreeMap<&Name, Vec<&VipNeed>>,
) -> Option<Vec<VipProbe>> {
    let mut out = Vec::new();
    let mut parameters = 0;
    for (cluster, needs) in wanted {
        let range = model.clusters[*cluster].cross_cluster.vip_range.net();
        let hosts: BTreeSet<String> = needs.iter().map(|n| n.host.to_string()).collect();
        let addresses: BTreeSet<String> = needs
            .iter()
            .flat_map(|n| generate::vips::candidates(range, n.host.as_str(), PROBED_ADDRESSES))
            .map(|ip| ip.to_string())
            .collect();
        parameters += 1 + hosts.len() + addresses.len();
        out.push(VipProbe {
            cluster: cluster_ids[*cluster],
            hosts: hosts.into_iter().collect(),
            addresses: addresses.into_iter().collect(),
        });
    }
    (parameters <= MAX_PROBE_PARAMETERS).then_some(out)
}

/// Why a set's VIPs could not be planned or stored.
#[derive(Debug, thiserror::Error)]
pub(crate) enum AllocationError {
    /// A range has no free address left (a 422 naming the cluster).
    #[error("a VIP range is full")]
    Render(Vec<RenderError>),
    /// The store failed, or writes kept racing; the cause is kept.
    #[error(transparent)]
    Other(#[from] Error),
}

impl AllocationError {
    pub(crate) fn into_error(self, set: &ResourcePath) -> Error {
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
pub(crate) async fn read_vips(
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
pub(crate) async fn allocate(
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
        // A set document's model holds only the clusters its apps run on, `ids` every cluster.
        // The set needs no VIP on a cluster outside its model, so whatever it holds there is
        // freed, in any range.
        let range = model.clusters.get(cluster).map_or_else(
            || {
                crate::domain::cluster::CrossClusterSettings::default()
                    .vip_range
                    .net()
            },
            |spec| spec.cross_cluster.vip_range.net(),
        );
        let mut done = false;
        for _ in 0..VIP_ATTEMPTS {
            let rows = tx.vips_on_cluster(*cluster_id).await?;
            let plan = plan_cluster(*cluster_id, range, rows, &ours, &wanted, &ids.intents)
                .map_err(|e| AllocationError::Render(vec![e]))?;
            let free: Vec<(Uuid, String)> =
                plan.free.iter().map(|h| (*cluster_id, h.clone())).collect();
            tx.delete_vips(&free).await?;
            let lost_race = tx.insert_vips(&plan.store).await? != plan.store.len() as u64;
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
