//! `IstioObject`: one object of any supported kind, with its Kubernetes envelope.

use serde::de::{self, Deserializer};
use serde::ser::{SerializeStruct, Serializer};
use serde::{Deserialize, Serialize};

use super::IstioKind;
use super::destination_rule::DestinationRuleSpec;
use super::gateway::GatewaySpec;
use super::meta::{ObjectMeta, Typed};
use super::security::{AuthorizationPolicySpec, PeerAuthenticationSpec};
use super::service_entry::ServiceEntrySpec;
use super::virtual_service::VirtualServiceSpec;

const NETWORKING_V1: &str = "networking.istio.io/v1";
const SECURITY_V1: &str = "security.istio.io/v1";

/// One Istio object of a supported kind; serializes as `apiVersion`, `kind`, `metadata`, `spec`.
#[derive(Clone, Debug, PartialEq)]
#[expect(
    clippy::large_enum_variant,
    reason = "the variants are the plain typed objects; they are built once, serialized and dropped"
)]
pub enum IstioObject {
    ServiceEntry(Typed<ServiceEntrySpec>),
    DestinationRule(Typed<DestinationRuleSpec>),
    VirtualService(Typed<VirtualServiceSpec>),
    Gateway(Typed<GatewaySpec>),
    AuthorizationPolicy(Typed<AuthorizationPolicySpec>),
    PeerAuthentication(Typed<PeerAuthenticationSpec>),
}

impl IstioObject {
    /// The kind (the one table of group, version, plural and apply order).
    pub fn istio_kind(&self) -> IstioKind {
        match self {
            Self::ServiceEntry(_) => IstioKind::ServiceEntry,
            Self::DestinationRule(_) => IstioKind::DestinationRule,
            Self::VirtualService(_) => IstioKind::VirtualService,
            Self::Gateway(_) => IstioKind::Gateway,
            Self::AuthorizationPolicy(_) => IstioKind::AuthorizationPolicy,
            Self::PeerAuthentication(_) => IstioKind::PeerAuthentication,
        }
    }

    /// The API group: `networking.istio.io` or `security.istio.io`.
    pub fn group(&self) -> &'static str {
        self.istio_kind().group()
    }

    /// `apiVersion`: `networking.istio.io/v1` or `security.istio.io/v1`.
    pub fn api_version(&self) -> &'static str {
        self.istio_kind().api_version()
    }

    /// `kind`, e.g. `DestinationRule`.
    pub fn kind(&self) -> &'static str {
        self.istio_kind().name()
    }

    /// The resource name used in Kubernetes API paths, e.g. `destinationrules`.
    pub fn plural(&self) -> &'static str {
        self.istio_kind().plural()
    }

    /// The object's metadata.
    pub fn metadata(&self) -> &ObjectMeta {
        match self {
            Self::ServiceEntry(o) => &o.metadata,
            Self::DestinationRule(o) => &o.metadata,
            Self::VirtualService(o) => &o.metadata,
            Self::Gateway(o) => &o.metadata,
            Self::AuthorizationPolicy(o) => &o.metadata,
            Self::PeerAuthentication(o) => &o.metadata,
        }
    }

    /// The object's metadata, mutably (e.g. to add labels).
    pub fn metadata_mut(&mut self) -> &mut ObjectMeta {
        match self {
            Self::ServiceEntry(o) => &mut o.metadata,
            Self::DestinationRule(o) => &mut o.metadata,
            Self::VirtualService(o) => &mut o.metadata,
            Self::Gateway(o) => &mut o.metadata,
            Self::AuthorizationPolicy(o) => &mut o.metadata,
            Self::PeerAuthentication(o) => &mut o.metadata,
        }
    }
}

impl Serialize for IstioObject {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut out = serializer.serialize_struct("IstioObject", 4)?;
        out.serialize_field("apiVersion", self.api_version())?;
        out.serialize_field("kind", self.kind())?;
        out.serialize_field("metadata", self.metadata())?;
        match self {
            Self::ServiceEntry(o) => out.serialize_field("spec", &o.spec)?,
            Self::DestinationRule(o) => out.serialize_field("spec", &o.spec)?,
            Self::VirtualService(o) => out.serialize_field("spec", &o.spec)?,
            Self::Gateway(o) => out.serialize_field("spec", &o.spec)?,
            Self::AuthorizationPolicy(o) => out.serialize_field("spec", &o.spec)?,
            Self::PeerAuthentication(o) => out.serialize_field("spec", &o.spec)?,
        }
        out.end()
    }
}

/// The envelope as read: the spec stays untyped until `apiVersion` and `kind` are known.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Envelope {
    api_version: String,
    kind: String,
    metadata: ObjectMeta,
    spec: serde_json::Value,
}

fn typed<S, E>(metadata: ObjectMeta, spec: serde_json::Value) -> Result<Typed<S>, E>
where
    S: de::DeserializeOwned,
    E: de::Error,
{
    let spec = serde_json::from_value(spec).map_err(|e| E::custom(format_args!("spec: {e}")))?;
    Ok(Typed { metadata, spec })
}

impl<'de> Deserialize<'de> for IstioObject {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let Envelope {
            api_version,
            kind,
            metadata,
            spec,
        } = Envelope::deserialize(deserializer)?;
        match (api_version.as_str(), kind.as_str()) {
            (NETWORKING_V1, "ServiceEntry") => typed(metadata, spec).map(Self::ServiceEntry),
            (NETWORKING_V1, "DestinationRule") => typed(metadata, spec).map(Self::DestinationRule),
            (NETWORKING_V1, "VirtualService") => typed(metadata, spec).map(Self::VirtualService),
            (NETWORKING_V1, "Gateway") => typed(metadata, spec).map(Self::Gateway),
            (SECURITY_V1, "AuthorizationPolicy") => {
                typed(metadata, spec).map(Self::AuthorizationPolicy)
            }
            (SECURITY_V1, "PeerAuthentication") => {
                typed(metadata, spec).map(Self::PeerAuthentication)
            }
            (NETWORKING_V1 | SECURITY_V1, _) => Err(de::Error::custom(format_args!(
                "unsupported kind {kind:?} for apiVersion {api_version:?}"
            ))),
            _ => Err(de::Error::custom(format_args!(
                "unsupported apiVersion {api_version:?} (expected {NETWORKING_V1} or {SECURITY_V1})"
            ))),
        }
    }
}

macro_rules! impl_from_typed {
    ($($spec:ty => $variant:ident),* $(,)?) => {$(
        impl From<Typed<$spec>> for IstioObject {
            fn from(object: Typed<$spec>) -> Self {
                Self::$variant(object)
            }
        }
    )*};
}

impl_from_typed! {
    ServiceEntrySpec => ServiceEntry,
    DestinationRuleSpec => DestinationRule,
    VirtualServiceSpec => VirtualService,
    GatewaySpec => Gateway,
    AuthorizationPolicySpec => AuthorizationPolicy,
    PeerAuthenticationSpec => PeerAuthentication,
}
