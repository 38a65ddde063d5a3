//! `PushError`: why talking to a cluster failed, keeping the API server's code, reason and
//! message and the underlying error as the source. kube errors are classified by
//! `push::cause`, so a message names the root cause (a refused certificate, not "client error
//! (Connect)").

use super::cause::{self, Cause};
use crate::istio::IstioKind;

#[derive(Debug, thiserror::Error)]
pub enum PushError {
    /// No HTTP answer came back: the connection was refused, reset or timed out, or its TLS
    /// handshake failed. `detail` is `cause::describe` of the source.
    #[error("{detail}")]
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
    #[error("{}", cause::describe_status(*code, reason, message))]
    Api {
        code: u16,
        reason: String,
        message: String,
    },
    /// Any other failure of the request (an answer that could not be read, a request that
    /// could not be sent). `detail` is `cause::describe` of the source.
    #[error("{detail}")]
    Transport {
        detail: String,
        #[source]
        source: kube::Error,
    },
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
    /// Classifies a kube error (with `cause::classify`, as the retry decision does).
    pub fn from_kube(error: kube::Error) -> PushError {
        match cause::classify(&error) {
            Cause::Status {
                code,
                reason,
                message,
            } => PushError::Api {
                code,
                reason,
                message,
            },
            other if other.is_connection_failure() => PushError::Unreachable {
                detail: other.to_string(),
                source: error,
            },
            other => PushError::Transport {
                detail: other.to_string(),
                source: error,
            },
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

    #[test]
    fn kube_errors_read_as_their_cause() {
        // A refused certificate as kube reports it: rustls' error inside an io::Error.
        let tls = kube::Error::Service(Box::new(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer),
        )));
        let e = PushError::from_kube(tls).during("cannot discover networking.istio.io/v1");
        assert_eq!(
            e.to_string(),
            "cannot discover networking.istio.io/v1: TLS handshake failed: invalid peer certificate: UnknownIssuer (is the cluster's CA certificate in the kubeconfig right?)"
        );
        assert!(matches!(
            e,
            PushError::During { ref source, .. } if matches!(**source, PushError::Unreachable { .. })
        ));

        let refused = PushError::from_kube(kube::Error::Service(Box::new(std::io::Error::from(
            std::io::ErrorKind::ConnectionRefused,
        ))));
        assert_eq!(
            refused.to_string(),
            "cannot reach the API server: connection refused"
        );

        let unauthorized = PushError::from_kube(kube::Error::Api(Box::new(kube::core::Status {
            code: 401,
            reason: "Unauthorized".into(),
            message: "Unauthorized".into(),
            ..Default::default()
        })));
        assert_eq!(unauthorized.code(), Some(401));
        assert!(
            unauthorized
                .to_string()
                .contains("the API server refused the credentials"),
            "{unauthorized}"
        );
    }
}
