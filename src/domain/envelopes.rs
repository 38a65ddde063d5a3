//! The `{metadata, spec}` envelope of each kind, as the API and the intent document carry it.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::access::{
    GlobalRoleBindingSpec, GlobalTokenSpec, ProjectRoleBindingSpec, ProjectTokenSpec,
};
use super::app::{AppSpec, CompositeAppSpec, ProjectSpec, TrafficIntentSetSpec};
use super::client::{ClientSpec, SecurityIntentSpec};
use super::cluster::{ClusterSpec, ClusterStatus, Kubeconfig};
use super::inbound::InboundIntentSpec;
use super::names::{Name, VersionName};
use super::outbound::OutboundIntentSpec;
use super::resource::{Kind, Metadata};
use super::route::RouteIntentSpec;
use super::violations::Violations;

/// Facts the store knows about a resource that are not part of its spec.
#[derive(Clone, Debug, Default)]
pub struct StoredFacts {
    pub kubeconfig_stored: bool,
    /// A token's secret, only in the response that created it.
    pub new_secret: Option<String>,
    /// When a token last authenticated a request (to the minute).
    pub last_used_at: Option<chrono::DateTime<chrono::Utc>>,
    /// A cluster's last check.
    pub cluster_check: Option<super::cluster_check::StoredCheck>,
}

/// Defaults a spec derives from its resource's name, filled in before it is stored so that
/// responses show them.
pub trait SpecDefaults: Sized {
    fn with_name_defaults(self, _name: &Name) -> Self {
        self
    }

    /// The version that, with the name, identifies the resource (composite apps only).
    fn version(&self) -> Option<&VersionName> {
        None
    }

    /// Rules among the spec's own fields that must see write-only fields (which the stored
    /// form lacks). Other rules live in `domain::rules`.
    fn check_write_only(&self, _v: &mut Violations) {}

    /// What a write does to the resource's stored secret (only clusters have one).
    fn secret_change(&self) -> SecretChange {
        SecretChange::Keep
    }
}

/// A write-only secret in a request: keep what is stored, remove it, or replace it.
#[derive(Debug)]
pub enum SecretChange {
    Keep,
    Remove,
    Set(Kubeconfig),
}

impl SpecDefaults for ProjectSpec {}
impl SpecDefaults for CompositeAppSpec {
    fn version(&self) -> Option<&VersionName> {
        Some(&self.version)
    }
}
impl SpecDefaults for TrafficIntentSetSpec {}
impl SpecDefaults for ClientSpec {}
impl SpecDefaults for SecurityIntentSpec {}
impl SpecDefaults for OutboundIntentSpec {}
impl SpecDefaults for RouteIntentSpec {}
impl SpecDefaults for GlobalRoleBindingSpec {}
impl SpecDefaults for ProjectRoleBindingSpec {}
impl SpecDefaults for GlobalTokenSpec {}
impl SpecDefaults for ProjectTokenSpec {}

impl SpecDefaults for AppSpec {
    fn with_name_defaults(self, name: &Name) -> Self {
        self.with_defaults(name)
    }
}

impl SpecDefaults for InboundIntentSpec {
    fn with_name_defaults(self, _name: &Name) -> Self {
        self.with_defaults()
    }
}

impl SpecDefaults for ClusterSpec {
    fn check_write_only(&self, v: &mut Violations) {
        self.check(v);
    }

    fn secret_change(&self) -> SecretChange {
        match &self.kubeconfig {
            None => SecretChange::Keep,
            Some(k) if k.is_empty() => SecretChange::Remove,
            Some(k) => SecretChange::Set(k.clone()),
        }
    }
}

/// A kind's envelope type, with its spec and list types.
pub trait Resource: Serialize + DeserializeOwned + ToSchema + Send + 'static {
    const KIND: Kind;
    type Spec: Serialize + DeserializeOwned + SpecDefaults + Clone + Send + Sync + 'static;
    type List: Serialize + ToSchema + Send;

    fn from_parts(metadata: Metadata, spec: Self::Spec, facts: &StoredFacts) -> Self;
    fn into_parts(self) -> (Metadata, Self::Spec);
    fn metadata(&self) -> &Metadata;
    fn list(items: Vec<Self>, next_page: Option<String>) -> Self::List;
}

/// `schema = (Name, ListName)` gives the envelope and its list component names other than the
/// Rust types' (for names that collide with generated clients' own, see docs/api.md).
macro_rules! envelope {
    ($(#[$doc:meta])* $name:ident, $list:ident, $kind:expr, $spec:ty $(, default = $note:literal)? $(, schema = ($schema:ident, $list_schema:ident))?) => {
        $(#[$doc])*
        #[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
        $(#[schema(as = $schema)])?
        #[serde(deny_unknown_fields)]
        pub struct $name {
            pub metadata: Metadata,
            $(#[serde(default)] #[doc = $note])?
            pub spec: $spec,
        }

        /// One page of a collection.
        #[derive(Clone, Debug, Serialize, ToSchema)]
        $(#[schema(as = $list_schema)])?
        #[serde(rename_all = "camelCase")]
        pub struct $list {
            pub items: Vec<$name>,
            /// Token for the next page (`?pageToken=`), or null on the last page.
            pub next_page: Option<String>,
        }

        impl Resource for $name {
            const KIND: Kind = $kind;
            type Spec = $spec;
            type List = $list;

            fn from_parts(metadata: Metadata, spec: $spec, _: &StoredFacts) -> Self {
                Self { metadata, spec }
            }

            fn into_parts(self) -> (Metadata, $spec) {
                (self.metadata, self.spec)
            }

            fn metadata(&self) -> &Metadata {
                &self.metadata
            }

            fn list(items: Vec<Self>, next_page: Option<String>) -> $list {
                $list { items, next_page }
            }
        }
    };
}

/// A registered target cluster.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Cluster {
    pub metadata: Metadata,
    pub spec: ClusterSpec,
    /// Set by the server; ignored in requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(read_only)]
    pub status: Option<ClusterStatus>,
}

/// One page of clusters.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClusterList {
    pub items: Vec<Cluster>,
    /// Token for the next page (`?pageToken=`), or null on the last page.
    pub next_page: Option<String>,
}

impl Resource for Cluster {
    const KIND: Kind = Kind::Cluster;
    type Spec = ClusterSpec;
    type List = ClusterList;

    fn from_parts(metadata: Metadata, spec: ClusterSpec, facts: &StoredFacts) -> Self {
        Self {
            metadata,
            spec,
            status: Some(ClusterStatus::new(
                facts.kubeconfig_stored,
                facts.cluster_check.as_ref(),
            )),
        }
    }

    fn into_parts(self) -> (Metadata, ClusterSpec) {
        (self.metadata, self.spec)
    }

    fn metadata(&self) -> &Metadata {
        &self.metadata
    }

    fn list(items: Vec<Self>, next_page: Option<String>) -> ClusterList {
        ClusterList { items, next_page }
    }
}

envelope!(
    /// A tenant.
    Project, ProjectList, Kind::Project, ProjectSpec, default = "May be left out: a project without namespaces."
);
envelope!(
    /// A versioned group of apps.
    CompositeApp, CompositeAppList, Kind::CompositeApp, CompositeAppSpec
);
envelope!(
    /// A member app of a composite app version.
    App, AppList, Kind::App, AppSpec
);
envelope!(
    /// A set of intents rendered and deployed together.
    TrafficIntentSet, TrafficIntentSetList, Kind::TrafficIntentSet, TrafficIntentSetSpec, default = "May be left out: no spec.sync (checked every 5m, drift reported, never repaired)."
);
envelope!(
    /// A service exposed in the mesh.
    InboundIntent, InboundIntentList, Kind::InboundIntent, InboundIntentSpec
);
envelope!(
    /// A client app allowed to call an inbound intent's service.
    Client, ClientList, Kind::Client, ClientSpec, schema = (InboundClient, InboundClientList)
);
envelope!(
    /// What a client may do.
    SecurityIntent, SecurityIntentList, Kind::SecurityIntent, SecurityIntentSpec
);
envelope!(
    /// An external service the mesh may reach.
    OutboundIntent, OutboundIntentList, Kind::OutboundIntent, OutboundIntentSpec
);
envelope!(
    /// Traffic management on an inbound or outbound intent.
    RouteIntent, RouteIntentList, Kind::RouteIntent, RouteIntentSpec
);
envelope!(
    /// Grants a global role (admin or reader) to a user or group.
    GlobalRoleBinding, GlobalRoleBindingList, Kind::GlobalRoleBinding, GlobalRoleBindingSpec
);
envelope!(
    /// Grants a role in a project (owner, editor or viewer) to a user or group.
    ProjectRoleBinding, ProjectRoleBindingList, Kind::ProjectRoleBinding, ProjectRoleBindingSpec
);

/// What the server knows of a token.
#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TokenStatus {
    /// The credential (`mi_...`): in the response that created the token and never again.
    /// Send it as `Authorization: Bearer <secret>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// When the token last authenticated a request (kept to the minute).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_used_at: Option<chrono::DateTime<chrono::Utc>>,
}

macro_rules! token_envelope {
    ($(#[$doc:meta])* $name:ident, $list:ident, $kind:expr, $spec:ty) => {
        $(#[$doc])*
        #[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
        #[serde(deny_unknown_fields)]
        pub struct $name {
            pub metadata: Metadata,
            pub spec: $spec,
            /// Set by the server; ignored in requests.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            #[schema(read_only)]
            pub status: Option<TokenStatus>,
        }

        /// One page of tokens (without their secrets).
        #[derive(Clone, Debug, Serialize, ToSchema)]
        #[serde(rename_all = "camelCase")]
        pub struct $list {
            pub items: Vec<$name>,
            /// Token for the next page (`?pageToken=`), or null on the last page.
            pub next_page: Option<String>,
        }

        impl Resource for $name {
            const KIND: Kind = $kind;
            type Spec = $spec;
            type List = $list;

            fn from_parts(metadata: Metadata, spec: $spec, facts: &StoredFacts) -> Self {
                Self {
                    metadata,
                    spec,
                    status: Some(TokenStatus {
                        secret: facts.new_secret.clone(),
                        last_used_at: facts.last_used_at,
                    }),
                }
            }

            fn into_parts(self) -> (Metadata, $spec) {
                (self.metadata, self.spec)
            }

            fn metadata(&self) -> &Metadata {
                &self.metadata
            }

            fn list(items: Vec<Self>, next_page: Option<String>) -> $list {
                $list { items, next_page }
            }
        }
    };
}

token_envelope!(
    /// An API token with global roles, or roles in named projects.
    GlobalToken, GlobalTokenList, Kind::GlobalToken, GlobalTokenSpec
);
token_envelope!(
    /// An API token with one role in this project.
    ProjectToken, ProjectTokenList, Kind::ProjectToken, ProjectTokenSpec
);
