//! Why a request to a cluster failed, read from the whole error, not its outermost layer: kube
//! reports a refused certificate as `client error (Connect)`, and the certificate problem is
//! only found deep in the source chain. One classification serves the retry decision
//! (`is_transient`), the messages (`describe`), counting what reached the server
//! (`reached_server`) and noticing a cluster that does not answer (`is_connection_failure`).

use std::error::Error as StdError;
use std::fmt;
use std::io;

use rustls::CertificateError;

/// What went wrong with one request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Cause {
    /// The API server answered with an error status.
    Status {
        code: u16,
        reason: String,
        message: String,
    },
    /// The TLS handshake failed because the API server's certificate was refused.
    Certificate {
        /// rustls' account, e.g. `invalid peer certificate: UnknownIssuer`.
        problem: String,
        /// What to check, when the problem says.
        hint: Option<&'static str>,
    },
    /// The TLS handshake failed otherwise (an alert from the server, a protocol error).
    Tls(String),
    /// No connection to the API server was made.
    Connect(Transport),
    /// A connection was made, but no answer came back on it.
    NoAnswer(Transport),
    /// An answer came back but could not be read.
    Unreadable(String),
    /// The request was never sent (it could not be built, or no credentials could be had).
    NotSent(String),
}

/// How a connection failed, below TLS.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Transport {
    Refused,
    /// Reset, aborted or closed by the other end.
    Reset,
    TimedOut,
    /// Anything else (e.g. a name that does not resolve), with the chain's messages.
    Other(String),
}

impl Cause {
    /// Worth trying again: the server was busy or failing, or the connection failed below TLS.
    /// A refused certificate or credential, a refusal of the request and an unreadable answer
    /// will fail the same way again.
    pub fn is_transient(&self) -> bool {
        match self {
            Cause::Status { code, .. } => *code == 429 || *code >= 500,
            Cause::Connect(_) | Cause::NoAnswer(_) => true,
            Cause::Certificate { .. }
            | Cause::Tls(_)
            | Cause::Unreadable(_)
            | Cause::NotSent(_) => false,
        }
    }

    /// No HTTP answer came back from an attempt to talk to the server: the connection was
    /// refused, reset or timed out, or its TLS handshake failed.
    pub fn is_connection_failure(&self) -> bool {
        matches!(
            self,
            Cause::Connect(_) | Cause::NoAnswer(_) | Cause::Certificate { .. } | Cause::Tls(_)
        )
    }

    /// An HTTP answer came back (an error status, or a body that could not be read).
    pub fn reached_server(&self) -> bool {
        matches!(self, Cause::Status { .. } | Cause::Unreadable(_))
    }
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cause::Status {
                code,
                reason,
                message,
            } => f.write_str(&describe_status(*code, reason, message)),
            Cause::Certificate {
                problem,
                hint: Some(hint),
            } => write!(f, "TLS handshake failed: {problem} ({hint})"),
            Cause::Certificate {
                problem,
                hint: None,
            }
            | Cause::Tls(problem) => write!(f, "TLS handshake failed: {problem}"),
            Cause::Connect(transport) => {
                let what = match transport {
                    Transport::Refused => "connection refused",
                    Transport::Reset => "connection reset",
                    Transport::TimedOut => "connecting timed out",
                    Transport::Other(text) => text,
                };
                write!(f, "cannot reach the API server: {what}")
            }
            Cause::NoAnswer(transport) => {
                let what = match transport {
                    Transport::Refused | Transport::Reset => "the connection was closed",
                    Transport::TimedOut => "the request timed out",
                    Transport::Other(text) => text,
                };
                write!(f, "no answer from the API server: {what}")
            }
            Cause::Unreadable(text) => write!(f, "unreadable answer from the API server: {text}"),
            Cause::NotSent(text) => f.write_str(text),
        }
    }
}

/// The message for an error status. A 401's own message says nothing ("Unauthorized"); a 403's
/// names the user, verb and resource, which is what an operator needs to grant.
pub fn describe_status(code: u16, reason: &str, message: &str) -> String {
    match code {
        401 => format!(
            "{code} {reason}: the API server refused the credentials (are the kubeconfig's token or client certificate valid?)"
        ),
        _ if message.is_empty() => format!("{code} {reason}"),
        _ => format!("{code} {reason}: {message}"),
    }
}

/// Classifies a failed request.
pub fn classify(error: &kube::Error) -> Cause {
    match error {
        kube::Error::Api(status) => Cause::Status {
            code: status.code,
            reason: status.reason.clone(),
            message: status.message.clone(),
        },
        kube::Error::Service(_) | kube::Error::HyperError(_) => transport(error),
        kube::Error::SerdeError(_)
        | kube::Error::FromUtf8(_)
        | kube::Error::LinesCodecMaxLineLengthExceeded
        | kube::Error::ReadEvents(_)
        | kube::Error::Discovery(_) => Cause::Unreadable(first_line(&error.to_string())),
        kube::Error::Auth(auth) => Cause::NotSent(format!(
            "cannot get credentials for the cluster: {}",
            auth_problem(auth)
        )),
        other => Cause::NotSent(first_line(&other.to_string())),
    }
}

/// A one-line description of a failure with its root cause, e.g. `TLS handshake failed:
/// invalid peer certificate: UnknownIssuer (is the cluster's CA certificate in the kubeconfig
/// right?)`.
pub fn describe(error: &kube::Error) -> String {
    classify(error).to_string()
}

/// See [`Cause::is_transient`].
pub fn is_transient(error: &kube::Error) -> bool {
    classify(error).is_transient()
}

/// See [`Cause::is_connection_failure`].
pub fn is_connection_failure(error: &kube::Error) -> bool {
    classify(error).is_connection_failure()
}

/// See [`Cause::reached_server`].
pub fn reached_server(error: &kube::Error) -> bool {
    classify(error).reached_server()
}

/// A failure below HTTP: the TLS handshake, or the connection under it.
fn transport(error: &kube::Error) -> Cause {
    let chain = chain(error);
    if let Some(tls) = chain.iter().find_map(|e| e.downcast_ref::<rustls::Error>()) {
        return match tls {
            rustls::Error::InvalidCertificate(certificate) => Cause::Certificate {
                problem: tls.to_string(),
                hint: certificate_hint(certificate),
            },
            other => Cause::Tls(other.to_string()),
        };
    }
    // hyper-util says whether the connection was made; below it are the connector's errors.
    let client = chain.iter().position(|e| {
        e.downcast_ref::<hyper_util::client::legacy::Error>()
            .is_some()
    });
    let connected = client.is_none_or(|at| {
        chain[at]
            .downcast_ref::<hyper_util::client::legacy::Error>()
            .is_some_and(|e| !e.is_connect())
    });
    let below = &chain[client.map_or(1, |at| at + 1)..];
    let how = below
        .iter()
        .find_map(|e| e.downcast_ref::<io::Error>().and_then(io_transport))
        .unwrap_or_else(|| Transport::Other(messages(below)));
    // A refused connection was never made, whoever reports it.
    if connected && how != Transport::Refused {
        Cause::NoAnswer(how)
    } else {
        Cause::Connect(how)
    }
}

fn io_transport(error: &io::Error) -> Option<Transport> {
    match error.kind() {
        io::ErrorKind::ConnectionRefused => Some(Transport::Refused),
        io::ErrorKind::ConnectionReset
        | io::ErrorKind::ConnectionAborted
        | io::ErrorKind::BrokenPipe
        | io::ErrorKind::UnexpectedEof => Some(Transport::Reset),
        io::ErrorKind::TimedOut => Some(Transport::TimedOut),
        _ => None,
    }
}

fn certificate_hint(error: &CertificateError) -> Option<&'static str> {
    match error {
        CertificateError::UnknownIssuer | CertificateError::BadSignature => {
            Some("is the cluster's CA certificate in the kubeconfig right?")
        }
        CertificateError::Expired
        | CertificateError::ExpiredContext { .. }
        | CertificateError::NotValidYet
        | CertificateError::NotValidYetContext { .. } => Some(
            "the API server's certificate is outside its validity period: renew it, or check this machine's clock",
        ),
        CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
            Some(
                "the certificate does not name the address in the kubeconfig's server field; check server or tls-server-name",
            )
        }
        _ => None,
    }
}

/// What went wrong getting credentials. Messages of the exec plugin's failures quote its
/// output, and those of a token that does not parse its text: neither is passed on.
fn auth_problem(error: &kube::client::AuthError) -> String {
    use kube::client::AuthError;
    match error {
        AuthError::AuthExecRun { out, .. } => {
            format!("the exec credential plugin failed ({})", out.status)
        }
        AuthError::AuthExecParse(_) | AuthError::AuthExec(_) | AuthError::ParseTokenKey(_) => {
            "the exec credential plugin's output cannot be used".to_owned()
        }
        other => first_line(&other.to_string()),
    }
}

/// The error and its sources, outermost first. `io::Error::source()` skips the error it wraps
/// (it answers that error's source), which is where rustls' error sits: look inside instead.
fn chain<'a>(error: &'a (dyn StdError + 'static)) -> Vec<&'a (dyn StdError + 'static)> {
    let mut out = Vec::new();
    let mut next = Some(error);
    while let Some(current) = next {
        out.push(current);
        next = match current.downcast_ref::<io::Error>() {
            Some(io) => io.get_ref().map(|inner| inner as &(dyn StdError + 'static)),
            None => current.source(),
        };
    }
    out
}

/// The messages of a chain joined by `: `, leaving out one already contained in the message
/// before it (wrappers often repeat what they wrap).
fn messages(chain: &[&(dyn StdError + 'static)]) -> String {
    let mut parts: Vec<String> = Vec::new();
    for error in chain {
        let text = error.to_string();
        if text.is_empty() || parts.last().is_some_and(|last| last.contains(&text)) {
            continue;
        }
        parts.push(text);
    }
    first_line(&parts.join(": "))
}

/// The first line, at most 300 characters: some messages quote what was received.
fn first_line(message: &str) -> String {
    message
        .lines()
        .next()
        .unwrap_or("")
        .chars()
        .take(300)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(code: u16, reason: &str, message: &str) -> kube::Error {
        kube::Error::Api(Box::new(kube::core::Status {
            code,
            reason: reason.to_owned(),
            message: message.to_owned(),
            ..Default::default()
        }))
    }

    /// A transport failure as kube reports it: a boxed error in `Error::Service`.
    fn service(error: impl StdError + Send + Sync + 'static) -> kube::Error {
        kube::Error::Service(Box::new(error))
    }

    #[test]
    fn statuses() {
        let unauthorized = api(401, "Unauthorized", "Unauthorized");
        assert!(!is_transient(&unauthorized));
        assert!(reached_server(&unauthorized));
        assert!(!is_connection_failure(&unauthorized));
        assert_eq!(
            describe(&unauthorized),
            "401 Unauthorized: the API server refused the credentials (are the kubeconfig's token or client certificate valid?)"
        );

        let forbidden = "destinationrules.networking.istio.io is forbidden: User \"system:serviceaccount:mesh:meshintent\" cannot list resource \"destinationrules\" in API group \"networking.istio.io\" at the cluster scope";
        let forbidden_error = api(403, "Forbidden", forbidden);
        assert!(!is_transient(&forbidden_error));
        assert!(reached_server(&forbidden_error));
        assert_eq!(
            describe(&forbidden_error),
            format!("403 Forbidden: {forbidden}")
        );

        for (code, reason) in [(429, "TooManyRequests"), (503, "ServiceUnavailable")] {
            let e = api(code, reason, "try later");
            assert!(is_transient(&e), "{code}");
            assert!(reached_server(&e) && !is_connection_failure(&e), "{code}");
            assert_eq!(describe(&e), format!("{code} {reason}: try later"));
        }
        assert!(!is_transient(&api(422, "Invalid", "bad")));
        assert_eq!(describe(&api(404, "NotFound", "")), "404 NotFound");
    }

    #[test]
    fn connection_failures_below_tls_are_transient() {
        for (kind, expected) in [
            (
                io::ErrorKind::ConnectionRefused,
                Cause::Connect(Transport::Refused),
            ),
            (
                io::ErrorKind::ConnectionReset,
                Cause::NoAnswer(Transport::Reset),
            ),
            (
                io::ErrorKind::TimedOut,
                Cause::NoAnswer(Transport::TimedOut),
            ),
        ] {
            let e = service(io::Error::from(kind));
            assert_eq!(classify(&e), expected, "{kind:?}");
            assert!(is_transient(&e), "{kind:?}");
            assert!(is_connection_failure(&e), "{kind:?}");
            assert!(!reached_server(&e), "{kind:?}");
        }
    }

    #[test]
    fn a_certificate_inside_an_io_error_is_found() {
        // As tokio-rustls reports a failed handshake: an io::Error wrapping rustls' error,
        // whose source() skips it.
        let wrapped = io::Error::new(
            io::ErrorKind::InvalidData,
            rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer),
        );
        assert!(wrapped.source().is_none());
        let e = service(wrapped);
        assert_eq!(
            describe(&e),
            "TLS handshake failed: invalid peer certificate: UnknownIssuer (is the cluster's CA certificate in the kubeconfig right?)"
        );
        assert!(!is_transient(&e));
        assert!(is_connection_failure(&e));
        assert!(!reached_server(&e));

        let expired = service(io::Error::new(
            io::ErrorKind::InvalidData,
            rustls::Error::InvalidCertificate(CertificateError::Expired),
        ));
        assert!(describe(&expired).contains("outside its validity period"));
        assert!(!is_transient(&expired));
    }

    #[test]
    fn answers_that_cannot_be_read_reached_the_server() {
        let e = kube::Error::SerdeError(serde_json::from_str::<u8>("x").unwrap_err());
        assert!(reached_server(&e));
        assert!(!is_transient(&e) && !is_connection_failure(&e));
        assert!(describe(&e).starts_with("unreadable answer from the API server: "));
    }

    #[test]
    fn exec_plugin_output_is_not_quoted() {
        let e = kube::Error::Auth(kube::client::AuthError::AuthExec(
            "token: s3cr3t".to_owned(),
        ));
        let text = describe(&e);
        assert!(!text.contains("s3cr3t"), "{text}");
        assert!(!is_transient(&e) && !reached_server(&e) && !is_connection_failure(&e));
    }
}
