//! Typed Istio resources, field for field as in the Istio 1.30 CRDs (version v1 of each kind).
//!
//! Every struct is strict (`deny_unknown_fields`) so that parsing generated YAML or JSON back
//! into these types catches typos; maps are `BTreeMap` and field order is fixed, so the
//! serialized output is deterministic.

mod common;
mod destination_rule;
mod gateway;
mod kind;
mod meta;
mod object;
mod security;
mod service_entry;
mod virtual_service;

pub use common::{Percent, PortSelector, WorkloadSelector};
pub use destination_rule::{
    ClientTlsMode, ClientTlsSettings, ConnectionPoolSettings, ConsistentHashLb,
    DestinationRuleSpec, H2UpgradePolicy, HttpCookie, HttpCookieAttribute, HttpSettings,
    LoadBalancerSettings, Maglev, OutlierDetection, PortTrafficPolicy, RingHash, SimpleLb, Subset,
    TcpKeepalive, TcpSettings, TrafficPolicy,
};
pub use gateway::{GatewaySpec, Server, ServerPort, ServerTlsMode, ServerTlsSettings, TlsProtocol};
pub use kind::{IstioKind, UnknownKind};
pub use meta::{ObjectMeta, Typed};
pub use object::IstioObject;
pub use security::{
    AuthorizationAction, AuthorizationPolicySpec, Condition, ExtensionProvider, MtlsMode,
    MutualTls, Operation, PeerAuthenticationSpec, PolicyTargetReference, Rule, RuleFrom, RuleTo,
    Source,
};
pub use service_entry::{
    Location, Resolution, ServiceEntrySpec, ServiceEntryWorkloadSelector, ServicePort,
    WorkloadEntry,
};
pub use virtual_service::{
    Destination, FaultAbort, FaultDelay, HeaderOperations, Headers, HttpFaultInjection,
    HttpMatchRequest, HttpRetry, HttpRewrite, HttpRoute, HttpRouteDestination, L4MatchAttributes,
    RouteDestination, StringMatch, TcpRoute, TlsMatchAttributes, TlsRoute, VirtualServiceSpec,
};

/// API group of ServiceEntry, DestinationRule, VirtualService and Gateway.
pub const GROUP_NETWORKING: &str = "networking.istio.io";
/// API group of AuthorizationPolicy and PeerAuthentication.
pub const GROUP_SECURITY: &str = "security.istio.io";
/// The one version this module models for both groups (the CRDs' storage version).
pub const VERSION: &str = "v1";
