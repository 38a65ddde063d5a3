//! Why a set cannot be rendered: a problem found only when resources are combined (e.g. a
//! server cluster without an ingress gateway address), named by resource and field.

use std::fmt;

use crate::domain::names::Name;

/// The resource a render error is about, within the rendered set (or a cluster).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Subject {
    Cluster(Name),
    App(Name),
    Inbound(Name),
    Client(Name, Name),
    Outbound(Name),
    Route(Name),
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct RenderError {
    pub subject: Subject,
    /// JSON pointer within the subject, e.g. `/spec/istio/ingressGateway/address`.
    pub field: String,
    pub message: String,
}

impl RenderError {
    pub fn new(subject: Subject, field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            subject,
            field: field.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Subject::Cluster(n) => write!(f, "cluster \"{n}\""),
            Subject::App(n) => write!(f, "app \"{n}\""),
            Subject::Inbound(n) => write!(f, "inbound intent \"{n}\""),
            Subject::Client(i, c) => write!(f, "client \"{c}\" of inbound intent \"{i}\""),
            Subject::Outbound(n) => write!(f, "outbound intent \"{n}\""),
            Subject::Route(n) => write!(f, "route intent \"{n}\""),
        }
    }
}

impl fmt::Display for RenderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {}", self.subject, self.field, self.message)
    }
}
