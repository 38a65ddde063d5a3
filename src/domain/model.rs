//! A traffic intent set with everything it refers to, in memory: what write-time rules are
//! checked against and what the generator renders. Ordered maps keep every walk deterministic.

use std::collections::BTreeMap;

use super::app::AppSpec;
use super::client::{ClientSpec, SecurityIntentSpec};
use super::cluster::ClusterSpec;
use super::inbound::InboundIntentSpec;
use super::names::{Name, VersionName};
use super::outbound::OutboundIntentSpec;
use super::resource::{Key, Kind, ResourcePath};
use super::route::RouteIntentSpec;

#[derive(Clone, Debug, PartialEq)]
pub struct ClientModel {
    pub spec: ClientSpec,
    pub security_intents: BTreeMap<Name, SecurityIntentSpec>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct InboundModel {
    pub spec: InboundIntentSpec,
    pub clients: BTreeMap<Name, ClientModel>,
}

/// Where a set sits in the resource tree.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SetAddress {
    pub project: Name,
    pub composite_app: Name,
    pub version: VersionName,
    pub set: Name,
}

impl SetAddress {
    pub fn path(&self) -> ResourcePath {
        ResourcePath::root()
            .child(Kind::Project, Key::named(self.project.clone()))
            .child(
                Kind::CompositeApp,
                Key {
                    name: self.composite_app.clone(),
                    version: Some(self.version.clone()),
                },
            )
            .child(Kind::TrafficIntentSet, Key::named(self.set.clone()))
    }

    pub fn from_path(path: &ResourcePath) -> Option<SetAddress> {
        let ca = path.find(Kind::CompositeApp)?;
        Some(SetAddress {
            project: path.find(Kind::Project)?.name.clone(),
            composite_app: ca.name.clone(),
            version: ca.version.clone()?,
            set: path.find(Kind::TrafficIntentSet)?.name.clone(),
        })
    }
}

/// One traffic intent set, its composite app's apps, and every cluster.
#[derive(Clone, Debug, PartialEq)]
pub struct IntentSetModel {
    pub address: SetAddress,
    pub clusters: BTreeMap<Name, ClusterSpec>,
    pub apps: BTreeMap<Name, AppSpec>,
    pub inbound: BTreeMap<Name, InboundModel>,
    pub outbound: BTreeMap<Name, OutboundIntentSpec>,
    pub routes: BTreeMap<Name, RouteIntentSpec>,
}

impl IntentSetModel {
    pub fn new(address: SetAddress) -> Self {
        Self {
            address,
            clusters: BTreeMap::new(),
            apps: BTreeMap::new(),
            inbound: BTreeMap::new(),
            outbound: BTreeMap::new(),
            routes: BTreeMap::new(),
        }
    }

    /// The clusters an app runs on, by name, in name order.
    pub fn app_clusters<'a>(&'a self, app: &'a AppSpec) -> Vec<&'a Name> {
        let placement = &app.placement;
        if let Some(names) = &placement.clusters {
            let mut out: Vec<&Name> = names
                .iter()
                .filter(|n| self.clusters.contains_key(*n))
                .collect();
            out.sort();
            out.dedup();
            out
        } else if let Some(selector) = &placement.cluster_selector {
            self.clusters
                .iter()
                .filter(|(_, c)| c.labels.matches(&selector.match_labels))
                .map(|(n, _)| n)
                .collect()
        } else {
            Vec::new()
        }
    }

    /// Route intents whose target is the inbound intent `name`.
    pub fn routes_to_inbound<'a>(
        &'a self,
        name: &'a Name,
    ) -> impl Iterator<Item = (&'a Name, &'a RouteIntentSpec)> {
        self.routes
            .iter()
            .filter(move |(_, r)| r.target.inbound_intent.as_ref() == Some(name))
    }

    /// Route intents whose target is the outbound intent `name`.
    pub fn routes_to_outbound<'a>(
        &'a self,
        name: &'a Name,
    ) -> impl Iterator<Item = (&'a Name, &'a RouteIntentSpec)> {
        self.routes
            .iter()
            .filter(move |(_, r)| r.target.outbound_intent.as_ref() == Some(name))
    }
}
