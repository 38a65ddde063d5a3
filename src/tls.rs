//! TLS set-up shared by every client the process makes (kube, reqwest, sqlx).

/// Installs rustls' ring crypto provider as the process default. Two providers are linked
/// (reqwest brings aws-lc-rs, sqlx ring), so rustls cannot choose one by itself and kube's client
/// would panic. Calling it again is harmless.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
