//! Virtual IPs for services reached across clusters.
//!
//! A VIP is wanted for each (client cluster, remote host). The preferred address is derived from
//! the host's name (so a host tends to get the same VIP on every cluster with the same range), and
//! taken addresses are skipped by probing forward. The API keeps allocations in the database
//! (stable across renders); offline rendering allocates from the document alone, in a fixed order.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use ipnet::IpNet;
use sha2::{Digest, Sha256};

use crate::domain::model::IntentSetModel;
use crate::domain::names::{DnsName, Name};

use super::errors::{RenderError, Subject};

/// Allocated VIPs by (cluster, host).
pub type VipTable = BTreeMap<(Name, DnsName), IpAddr>;

/// A VIP wanted for `host` on `cluster`, on behalf of the intent `intent` of the set (listed by
/// `plan::SetPlan::vip_needs`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct VipNeed {
    pub cluster: Name,
    pub host: DnsName,
    pub intent: Name,
}

/// Addresses of `range` that may be handed out: for IPv4 not the network and broadcast addresses.
fn usable(range: IpNet) -> (u128, u128) {
    let (base, size): (u128, u128) = match range {
        IpNet::V4(n) => (
            u128::from(u32::from(n.network())),
            1u128 << (32 - n.prefix_len()),
        ),
        IpNet::V6(n) => (
            u128::from(n.network()),
            1u128
                .checked_shl(128 - u32::from(n.prefix_len()))
                .unwrap_or(u128::MAX),
        ),
    };
    match range {
        IpNet::V4(_) if size > 2 => (base + 1, size - 2),
        IpNet::V6(_) if size > 1 => (base + 1, size - 1),
        _ => (base, size),
    }
}

fn address(range: IpNet, value: u128) -> IpAddr {
    match range {
        IpNet::V4(_) => IpAddr::from(std::net::Ipv4Addr::from(
            u32::try_from(value).expect("inside an IPv4 range"),
        )),
        IpNet::V6(_) => IpAddr::from(std::net::Ipv6Addr::from(value)),
    }
}

/// The offset (of `count` usable addresses) that `host` prefers: derived from its name.
fn preferred(host: &str, count: u128) -> u128 {
    let digest = Sha256::digest(host.as_bytes());
    u128::from_be_bytes(digest[..16].try_into().expect("16 bytes")) % count
}

/// The first free address of `range` at or after the one `host` prefers.
pub fn pick(range: IpNet, taken: &BTreeSet<IpAddr>, host: &str) -> Option<IpAddr> {
    let (first, count) = usable(range);
    let preferred = preferred(host, count);
    // Probe at most as many addresses as are taken, plus one: a free one is among them.
    let limit = count.min(taken.len() as u128 + 1);
    (0..limit)
        .map(|i| address(range, first + (preferred + i) % count))
        .find(|a| !taken.contains(a))
}

/// The first `count` addresses `host` probes in `range`, in probe order: where `pick` looks.
pub fn candidates(range: IpNet, host: &str, count: usize) -> Vec<IpAddr> {
    let (first, size) = usable(range);
    let preferred = preferred(host, size);
    (0..size.min(count as u128))
        .map(|i| address(range, first + (preferred + i) % size))
        .collect()
}

/// Allocates every need from the document alone: needs in sorted order, each cluster's range.
pub fn allocate_offline(
    model: &IntentSetModel,
    needs: &BTreeSet<VipNeed>,
) -> Result<VipTable, Vec<RenderError>> {
    let mut table = VipTable::new();
    let mut taken: BTreeMap<&Name, BTreeSet<IpAddr>> = BTreeMap::new();
    let mut errors = Vec::new();
    for need in needs {
        let key = (need.cluster.clone(), need.host.clone());
        if table.contains_key(&key) {
            continue;
        }
        let range = model.clusters[&need.cluster].cross_cluster.vip_range.net();
        let used = taken.entry(&need.cluster).or_default();
        match pick(range, used, need.host.as_str()) {
            Some(ip) => {
                used.insert(ip);
                table.insert(key, ip);
            }
            None => errors.push(RenderError::new(
                Subject::Cluster(need.cluster.clone()),
                "/spec/crossCluster/vipRange",
                format!("{range} has no free address left for {}", need.host),
            )),
        }
    }
    if errors.is_empty() {
        Ok(table)
    } else {
        Err(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_inside_the_range_skipping_network_and_broadcast() {
        let range: IpNet = "10.0.0.0/30".parse().unwrap();
        let mut taken = BTreeSet::new();
        let a = pick(range, &taken, "a").unwrap();
        taken.insert(a);
        let b = pick(range, &taken, "a").unwrap();
        taken.insert(b);
        let mut got = vec![a, b];
        got.sort();
        assert_eq!(
            got,
            [
                "10.0.0.1".parse::<IpAddr>().unwrap(),
                "10.0.0.2".parse().unwrap()
            ]
        );
        assert_eq!(
            pick(range, &taken, "c"),
            None,
            "a /30 has two usable addresses"
        );
    }

    #[test]
    fn the_same_host_prefers_the_same_address() {
        let range: IpNet = "240.240.0.0/16".parse().unwrap();
        let empty = BTreeSet::new();
        assert_eq!(
            pick(range, &empty, "httpbin.default.svc.cluster.local"),
            pick(range, &empty, "httpbin.default.svc.cluster.local")
        );
        assert_ne!(
            pick(range, &empty, "a.default.svc.cluster.local"),
            pick(range, &empty, "b.default.svc.cluster.local")
        );
        let ip = pick(range, &empty, "x").unwrap();
        assert!(range.contains(&ip));
    }

    #[test]
    fn pick_takes_the_first_free_candidate() {
        let range: IpNet = "10.0.0.0/24".parse().unwrap();
        let candidates = candidates(range, "h", 4);
        assert_eq!(candidates.len(), 4);
        assert_eq!(pick(range, &BTreeSet::new(), "h"), Some(candidates[0]));
        let taken = BTreeSet::from([candidates[0], candidates[1]]);
        assert_eq!(pick(range, &taken, "h"), Some(candidates[2]));
        assert_eq!(
            super::candidates("10.0.0.0/30".parse().unwrap(), "h", 9).len(),
            2
        );
    }

    #[test]
    fn ipv6_ranges_work() {
        let range: IpNet = "fd00:240::/64".parse().unwrap();
        let ip = pick(range, &BTreeSet::new(), "x").unwrap();
        assert!(range.contains(&ip));
    }
}
