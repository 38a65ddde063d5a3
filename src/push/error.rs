//! `PushError`: why talking to a cluster failed, keeping the API server's code, reason and
//! message and the underlying error as the source.

use crate::istio::IstioKind;

#[derive(Debug, thiserror::Error)]
pub enum PushError {
    /// No connection (refused, reset, timed out).
    #[error("cannot reach the API server: {detail}")]
    Unreachable {
        detail: String,
        #[source]
        source: kube::Error,
    },
    /// The cluster does not serve an Istio API group at all.
    #[error("the cluster does not serve {api_version}: is Istio (1.22 or later) installed?")]
    GroupNotServed { api_version: &'static str },
    /// The cluster serves the group but not one of the kinds meshintent writes.
    #[error(
        "the cluster serves {} but not {kind} ({}); check the installed Istio CRDs",
        kind.api_version(),
        kind.group()
    )]
    KindNotServed { kind: IstioKind },
    /// The API server answered with an error status.
    #[error("{code} {reason}: {message}")]
    Api {
        code: u16,
        reason: String,
        message: String,
    },
    /// Any other failure of the request.
    #[error("{0}")]
    Transport(#[source] kube::Error),
    /// No client could be built: no credentials, a kubeconfig that does not parse or cannot be
    /// used (the message never quotes the kubeconfig).
    #[error("{0}")]
    Access(String),
    /// A failure with what meshintent was doing.
    #[error("{context}: {source}")]
    During {
        context: String,
        #[source]
        source: Box<PushError>,
    },
}

impl PushError {
    /// Classifies a kube error.
    pub fn from_kube(error: kube::Error) -> PushError {
        match error {
            kube::Error::Api(status) => PushError::Api {
                code: status.code,
                reason: status.reason.clone(),
                message: status.message.clone(),
            },
            kube::Error::Service(ref e) => PushError::Unreachable {
                detail: e.to_string(),
                source: error,
            },
            kube::Error::HyperError(ref e) => PushError::Unreachable {
                detail: e.to_string(),
                source: error,
            },
            other => PushError::Transport(other),
        }
    }

    /// The error with what was being done.
    pub fn during(self, context: impl Into<String>) -> PushError {
        PushError::During {
            context: context.into(),
            source: Box::new(self),
        }
    }

    /// The API server's HTTP status code, when it answered.
    pub fn code(&self) -> Option<u16> {
        match self {
            PushError::Api { code, .. } => Some(*code),
            PushError::During { source, .. } => source.code(),
            _ => None,
        }
    }
}

impl From<kube::Error> for PushError {
    fn from(error: kube::Error) -> PushError {
        PushError::from_kube(error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_code_reaches_the_message() {
        let e = PushError::Api {
            code: 403,
            reason: "Forbidden".into(),
            message: "no".into(),
        }
        .during("cannot list Gateway objects");
        assert_eq!(e.code(), Some(403));
        assert_eq!(
            e.to_string(),
            "cannot list Gateway objects: 403 Forbidden: no"
        );
        assert_eq!(
            PushError::KindNotServed {
                kind: IstioKind::Gateway
            }
            .to_string(),
            "the cluster serves networking.istio.io/v1 but not Gateway (networking.istio.io); check the installed Istio CRDs"
        );
    }
}
