//! Kubernetes clients for target clusters, from a stored kubeconfig (decrypted only in memory)
//! or from the pod's service account.

use std::future::Future;
use std::time::Duration;

use super::error::PushError;
use crate::domain::names::Name;

/// Sent with every request to a cluster, so API servers' audit logs and metrics name the caller
/// (kube sends no User-Agent by itself).
pub const USER_AGENT: &str = concat!("meshintent/", env!("CARGO_PKG_VERSION"));

/// Builds a client for a cluster by name (the port a deploy and a verify reach clusters
/// through; implemented once, by the service, which knows the stored credentials).
pub trait ClusterClients: Sync {
    fn client(
        &self,
        cluster: &Name,
    ) -> impl Future<Output = Result<kube::Client, PushError>> + Send;
}

/// How meshintent reaches a cluster.
pub enum ClusterAccess {
    /// A kubeconfig (YAML), decrypted for this use only.
    Kubeconfig(String),
    /// The service account of the pod meshintent runs in.
    InCluster,
}

impl std::fmt::Debug for ClusterAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClusterAccess::Kubeconfig(_) => f.write_str("Kubeconfig(<redacted>)"),
            ClusterAccess::InCluster => f.write_str("InCluster"),
        }
    }
}

/// A client with meshintent's timeouts and User-Agent, and without kube's own retries
/// (meshintent retries, with its own policy).
pub async fn client(
    access: &ClusterAccess,
    connect_timeout: Duration,
    request_timeout: Duration,
) -> Result<kube::Client, PushError> {
    crate::tls::install_crypto_provider();
    let mut config = match access {
        ClusterAccess::Kubeconfig(yaml) => {
            // Messages of the parser may quote the content: never pass them on.
            let kubeconfig = kube::config::Kubeconfig::from_yaml(yaml).map_err(|_| {
                PushError::Access("the stored kubeconfig does not parse".to_string())
            })?;
            kube::Config::from_custom_kubeconfig(
                kubeconfig,
                &kube::config::KubeConfigOptions::default(),
            )
            .await
            .map_err(|e| {
                PushError::Access(format!(
                    "the stored kubeconfig cannot be used: {}",
                    redact(&e.to_string())
                ))
            })?
        }
        ClusterAccess::InCluster => kube::Config::incluster()
            .map_err(|e| PushError::Access(format!("in-cluster configuration: {e}")))?,
    };
    config.connect_timeout = Some(connect_timeout);
    config.read_timeout = Some(request_timeout);
    config.write_timeout = Some(request_timeout);
    config.default_retry = false;
    // Parsed into kube's header types (no `http` dependency for one header); both are constants.
    config.headers.push((
        "user-agent".parse().expect("a valid header name"),
        USER_AGENT.parse().expect("a valid header value"),
    ));
    kube::Client::try_from(config).map_err(|e| {
        PushError::Access(format!("cannot build a client: {}", redact(&e.to_string())))
    })
}

/// Keeps only the first line of an error: kube errors about a kubeconfig can echo fields.
fn redact(message: &str) -> String {
    message
        .lines()
        .next()
        .unwrap_or("")
        .chars()
        .take(200)
        .collect()
}
