//! Credential adaptation for service brokers (the consumer side of the Open Service Broker
//! proxy convention): rewrite the endpoints in a binding's credentials so that a client in
//! another cluster reaches the service through the mesh.
//!
//! [`Mappings::new`] validates a list of [`EndpointMapping`]s; [`Mappings::adapt`] walks a
//! credentials document and replaces every endpoint that matches a mapping's `source` with its
//! `target`. Everything here is pure: no I/O.
//!
//! # What is rewritten
//!
//! * **Host/port objects.** An object with a `host` (or `hostname`) string and a `port` is one
//!   endpoint: when (host, port) matches a source, both become the target. When an object has
//!   both `host` and `hostname`, each is looked up with the same `port`; the port is replaced
//!   only if every matching key agrees on the target port (otherwise the object's endpoint is
//!   left alone). Keys are matched exactly (`Host` or `HOST` are ordinary keys).
//! * **Host without port.** An object with `host`/`hostname` and no `port` key has its host
//!   replaced only if every mapping whose source is that host has the same target host; if the
//!   targets differ the host is ambiguous and left unchanged.
//! * **URIs.** Any string, whatever its key, of the form `[jdbc:]scheme://authority...` (scheme
//!   = a letter followed by letters, digits, `+`, `.`, `-`; the `jdbc:` prefix in any case) is a
//!   URI. Only the `host[:port]` text of its authority is replaced; the scheme, user info, path,
//!   query and fragment are kept byte for byte (no normalization, no trailing `/` added).
//! * **Recursion.** Objects and arrays are walked at any depth; object key order is kept.
//!   Numbers, booleans, null and other strings are returned unchanged.
//!
//! # Edge cases, as decided
//!
//! * Hosts compare ASCII case-insensitively; the replacement is the target's spelling. IPv6
//!   addresses compare as addresses (`::1` matches `[0:0::1]`), brackets optional in mappings
//!   and `host` fields, always written in URIs. Hosts are otherwise compared as text: no
//!   percent-decoding, `db.` and `db` differ.
//! * Ports compare numerically. In an object a port is a JSON number or a string of ASCII digits
//!   (`5432`, `"5432"`); the replacement keeps the JSON type. A `port` key holding anything else
//!   (null, `"abc"`, `5432.5`) makes the object's endpoint unknown: it is left unchanged, and it
//!   does not count as "no port". A `port` without a `host`/`hostname` sibling is never touched.
//! * URI authority: it ends at the first `/`, `?` or `#` (and `;` for `sqlserver`, whose JDBC
//!   properties follow one); user info is everything up to its last `@` and is never changed
//!   (so user info containing an unencoded `/`, `?` or `#` cuts the authority short, and the
//!   URI is in practice left unchanged). The host list after the user info is split on `,`
//!   (multi-host PostgreSQL, MongoDB and MySQL URIs); each host is matched and replaced on its
//!   own.
//!   A host is a bracketed IPv6 literal or text without `:`; a port is non-empty ASCII digits.
//!   An entry that does not parse (bare IPv6, `host:`, `host:abc`) is left as it is.
//! * A URI host without a port matches with the scheme's default port ([`default_port`]); the
//!   `jdbc:` prefix is ignored for this. The replacement writes the target port explicitly
//!   unless it equals that default. A URI host with an explicit port keeps an explicit port,
//!   even when the target port is the default. With an unknown scheme and no port the host is
//!   left unchanged.
//! * Each value is rewritten at most once: mappings do not chain (`a -> b` and `b -> c` turn
//!   `a` into `b`, not `c`).
//! * Not rewritten: `host:port` strings that are not URIs, arrays of hosts, hosts or ports in
//!   query parameters, non-hierarchical JDBC forms (`jdbc:oracle:thin:@host:1521:sid`,
//!   `jdbc:mysql:loadbalance://...`, `address=(host=...)`), `mongodb+srv://` (no port, no
//!   default).
//!
//! # Validation
//!
//! [`Mappings::new`] returns every problem as a [`FieldError`] whose `field` is a JSON pointer
//! into the request body, e.g. `/endpoint_mappings/1/source/port` (use [`Mappings::new_at`] when
//! the list sits elsewhere). The rules: the list is not empty (pointer `/endpoint_mappings`);
//! a host is not empty and is a host name or IP address, without scheme, port, path, user info,
//! whitespace or any of `/?#@,;:[]\` (except an IPv6 address, bracketed or not); a port is not
//! 0; two mappings with the same source (compared as above) have the same target (the later
//! one is reported at `/endpoint_mappings/{i}/source`). Repeating an identical mapping is
//! allowed.

use std::collections::HashMap;
use std::net::Ipv6Addr;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::names::quoted;
use super::violations::FieldError;

/// Where the mapping list sits in a `POST /v2/adapt-credentials` body.
pub const MAPPINGS_POINTER: &str = "/endpoint_mappings";

/// A network endpoint: a host name or IP address, and a port.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = CredentialEndpoint)]
pub struct Endpoint {
    /// Host name or IP address (IPv6 with or without brackets); compared case-insensitively.
    #[schema(example = "my-cf-service")]
    pub host: String,
    #[schema(example = 1234, minimum = 1, maximum = 65535)]
    pub port: u16,
}

/// Rewrite `source` into `target` wherever it appears in the credentials.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EndpointMapping {
    pub source: Endpoint,
    pub target: Endpoint,
}

/// A validated set of endpoint mappings, ready to adapt credentials.
#[derive(Clone, Debug)]
pub struct Mappings {
    /// (host key, port) of a source -> its target.
    by_endpoint: HashMap<(String, u16), Target>,
    /// host key of a source -> the target host when every mapping of that host agrees on it.
    by_host: HashMap<String, Option<Target>>,
}

/// A mapping's target, with the host split into its spellings.
#[derive(Clone, Debug)]
struct Target {
    /// The host as given, without brackets.
    host: String,
    port: u16,
    ipv6: bool,
}

impl Target {
    fn new(endpoint: &Endpoint) -> Self {
        let host = unbracketed(&endpoint.host);
        Self {
            ipv6: host.parse::<Ipv6Addr>().is_ok(),
            host: host.to_owned(),
            port: endpoint.port,
        }
    }

    fn key(&self) -> (String, u16) {
        (host_key(&self.host), self.port)
    }

    /// The host as written in a URI authority.
    fn uri_host(&self) -> String {
        if self.ipv6 {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        }
    }

    /// The host as written in a `host` field that held `old` (brackets kept if `old` had them).
    fn field_host(&self, old: &str) -> String {
        if old.starts_with('[') {
            self.uri_host()
        } else {
            self.host.clone()
        }
    }
}

impl Mappings {
    /// Validates `mappings`, reporting errors at pointers under `/endpoint_mappings`.
    pub fn new(mappings: Vec<EndpointMapping>) -> Result<Self, Vec<FieldError>> {
        Self::new_at(mappings, MAPPINGS_POINTER)
    }

    /// Validates `mappings`, reporting errors at pointers under `at` (the list's own pointer).
    pub fn new_at(mappings: Vec<EndpointMapping>, at: &str) -> Result<Self, Vec<FieldError>> {
        let mut errors = Vec::new();
        if mappings.is_empty() {
            errors.push(FieldError::new(at, "must hold at least one mapping"));
        }
        let mut by_endpoint: HashMap<(String, u16), (usize, Target)> = HashMap::new();
        let mut by_host: HashMap<String, Option<Target>> = HashMap::new();
        for (i, m) in mappings.iter().enumerate() {
            let before = errors.len();
            check_endpoint(&m.source, &format!("{at}/{i}/source"), &mut errors);
            check_endpoint(&m.target, &format!("{at}/{i}/target"), &mut errors);
            if errors.len() > before {
                continue;
            }
            let source = (host_key(unbracketed(&m.source.host)), m.source.port);
            let target = Target::new(&m.target);
            if let Some((first, known)) = by_endpoint.get(&source) {
                if known.key() != target.key() {
                    errors.push(FieldError::new(
                        format!("{at}/{i}/source"),
                        format!(
                            "{} is mapped to {}, but {at}/{first} already maps it to {}",
                            display(&m.source.host, m.source.port),
                            display(&m.target.host, m.target.port),
                            display(&known.host, known.port),
                        ),
                    ));
                }
                continue;
            }
            by_host
                .entry(source.0.clone())
                .and_modify(|known| {
                    if known
                        .as_ref()
                        .is_some_and(|k| host_key(&k.host) != host_key(&target.host))
                    {
                        *known = None;
                    }
                })
                .or_insert_with(|| Some(target.clone()));
            by_endpoint.insert(source, (i, target));
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(Self {
            by_endpoint: by_endpoint.into_iter().map(|(k, (_, t))| (k, t)).collect(),
            by_host,
        })
    }

    /// Returns `credentials` with every matching endpoint replaced by its target.
    pub fn adapt(&self, credentials: &Value) -> Value {
        let mut adapted = credentials.clone();
        self.adapt_in_place(&mut adapted);
        adapted
    }

    /// Like [`Mappings::adapt`], rewriting `credentials` where it is.
    pub fn adapt_in_place(&self, credentials: &mut Value) {
        match credentials {
            Value::String(s) => {
                if let Some(adapted) = self.adapt_uri(s) {
                    *s = adapted;
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|v| self.adapt_in_place(v)),
            Value::Object(map) => {
                self.adapt_host_port(map);
                // Replaced hosts and ports are never URIs, so walking them again is harmless.
                map.values_mut().for_each(|v| self.adapt_in_place(v));
            }
            Value::Null | Value::Bool(_) | Value::Number(_) => {}
        }
    }

    fn lookup(&self, host: &str, port: u16) -> Option<&Target> {
        self.by_endpoint.get(&(host_key(unbracketed(host)), port))
    }

    /// Rewrites the `host`/`hostname` and `port` fields of one object.
    fn adapt_host_port(&self, map: &mut Map<String, Value>) {
        const HOST_KEYS: [&str; 2] = ["host", "hostname"];
        let hosts = HOST_KEYS.map(|k| map.get(k).and_then(Value::as_str));
        let replacements = match map.get("port") {
            None => hosts.map(|h| {
                h.and_then(|h| {
                    let target = self.by_host.get(&host_key(unbracketed(h)))?.as_ref()?;
                    Some(target.field_host(h))
                })
            }),
            Some(port) => {
                let Some(port) = port_of(port) else { return };
                let hits = hosts.map(|h| h.and_then(|h| Some((self.lookup(h, port)?, h))));
                let mut ports = hits.iter().flatten().map(|(t, _)| t.port);
                let Some(new_port) = ports.next() else { return };
                if ports.any(|p| p != new_port) {
                    return;
                }
                let replacements = hits.map(|hit| hit.map(|(t, old)| t.field_host(old)));
                if let Some(old) = map.get_mut("port") {
                    *old = match old {
                        Value::String(_) => Value::String(new_port.to_string()),
                        _ => Value::from(new_port),
                    };
                }
                replacements
            }
        };
        for (key, new) in HOST_KEYS.iter().zip(replacements) {
            if let Some(new) = new {
                map.insert((*key).to_owned(), Value::String(new));
            }
        }
    }

    /// The rewritten URI, or `None` when `s` is not a URI or no host in it matches.
    fn adapt_uri(&self, s: &str) -> Option<String> {
        let uri = UriHosts::parse(s)?;
        let default = default_port(uri.scheme);
        let mut changed = false;
        let entries: Vec<String> = s[uri.hosts.clone()]
            .split(',')
            .map(|entry| match self.adapt_authority_host(entry, default) {
                Some(new) => {
                    changed = true;
                    new
                }
                None => entry.to_owned(),
            })
            .collect();
        changed.then(|| {
            format!(
                "{}{}{}",
                &s[..uri.hosts.start],
                entries.join(","),
                &s[uri.hosts.end..]
            )
        })
    }

    /// Rewrites one `host[:port]` of a URI authority, or `None` when it does not match.
    fn adapt_authority_host(&self, entry: &str, default: Option<u16>) -> Option<String> {
        let (host, port) = split_host_port(entry)?;
        if host.is_empty() || host == "[]" {
            return None;
        }
        let target = self.lookup(host, port.or(default)?)?;
        let explicit = port.is_some() || Some(target.port) != default;
        Some(if explicit {
            format!("{}:{}", target.uri_host(), target.port)
        } else {
            target.uri_host()
        })
    }
}

/// The default port of a URI scheme (without any `jdbc:` prefix), compared case-insensitively.
pub fn default_port(scheme: &str) -> Option<u16> {
    Some(match scheme.to_ascii_lowercase().as_str() {
        "http" | "ws" => 80,
        "https" | "wss" => 443,
        "postgres" | "postgresql" => 5432,
        "mysql" | "mariadb" => 3306,
        "amqp" => 5672,
        "amqps" => 5671,
        "redis" | "rediss" => 6379,
        "mongodb" => 27017,
        "sqlserver" => 1433,
        _ => return None,
    })
}

/// Where the comma-separated host list of a URI sits.
struct UriHosts<'a> {
    /// The scheme, without the `jdbc:` prefix.
    scheme: &'a str,
    /// Byte range of the host list: after the user info, before the path and any `;`.
    hosts: std::ops::Range<usize>,
}

impl<'a> UriHosts<'a> {
    fn parse(s: &'a str) -> Option<Self> {
        let scheme_start = match s.get(..5) {
            Some(prefix) if prefix.eq_ignore_ascii_case("jdbc:") && !s[5..].starts_with("//") => 5,
            _ => 0,
        };
        let rest = &s[scheme_start..];
        let scheme_len = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '+' | '.' | '-')))
            .unwrap_or(rest.len());
        let scheme = &rest[..scheme_len];
        if !scheme.starts_with(|c: char| c.is_ascii_alphabetic())
            || !rest[scheme_len..].starts_with("://")
        {
            return None;
        }
        let authority_start = scheme_start + scheme_len + 3;
        // SQL Server JDBC URLs have no user info and put their properties after a `;`.
        let ends: &[char] = if scheme.eq_ignore_ascii_case("sqlserver") {
            &['/', '?', '#', ';']
        } else {
            &['/', '?', '#']
        };
        let authority_end = s[authority_start..]
            .find(ends)
            .map_or(s.len(), |i| authority_start + i);
        let authority = &s[authority_start..authority_end];
        let hosts_start = authority_start + authority.rfind('@').map_or(0, |i| i + 1);
        Some(Self {
            scheme,
            hosts: hosts_start..authority_end,
        })
    }
}

/// Splits `host[:port]` or `[v6][:port]`; `None` when the text is not of that form.
fn split_host_port(entry: &str) -> Option<(&str, Option<u16>)> {
    let (host, port) = if entry.starts_with('[') {
        let close = entry.find(']')?;
        let (host, rest) = entry.split_at(close + 1);
        if rest.is_empty() {
            (host, None)
        } else {
            (host, Some(rest.strip_prefix(':')?))
        }
    } else {
        match entry.split_once(':') {
            None => (entry, None),
            Some((host, port)) => (host, Some(port)),
        }
    };
    match port {
        None => Some((host, None)),
        Some(port) => Some((host, Some(digits_port(port)?))),
    }
}

/// A port given as ASCII digits (leading zeros allowed).
fn digits_port(s: &str) -> Option<u16> {
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        s.parse().ok()
    } else {
        None
    }
}

/// A credential's `port` value: a JSON integer or a string of digits.
fn port_of(value: &Value) -> Option<u16> {
    match value {
        Value::Number(n) => n.as_u64().and_then(|n| u16::try_from(n).ok()),
        Value::String(s) => digits_port(s),
        _ => None,
    }
}

/// `[v6]` -> `v6`; anything else as it is.
fn unbracketed(host: &str) -> &str {
    host.strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host)
}

/// The form hosts are compared in: IPv6 addresses canonical, everything else ASCII lowercase.
fn host_key(host: &str) -> String {
    match host.parse::<Ipv6Addr>() {
        Ok(addr) => addr.to_string(),
        Err(_) => host.to_ascii_lowercase(),
    }
}

fn display(host: &str, port: u16) -> String {
    let host = unbracketed(host);
    if host.parse::<Ipv6Addr>().is_ok() {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

fn check_endpoint(endpoint: &Endpoint, at: &str, errors: &mut Vec<FieldError>) {
    let host = &endpoint.host;
    if host.is_empty() {
        errors.push(FieldError::new(format!("{at}/host"), "must not be empty"));
    } else if host.starts_with('[') && unbracketed(host).parse::<Ipv6Addr>().is_err() {
        errors.push(FieldError::new(
            format!("{at}/host"),
            format!(
                "brackets are only for IPv6 addresses such as [::1] (got {})",
                quoted(host)
            ),
        ));
    } else if unbracketed(host).parse::<Ipv6Addr>().is_err()
        && host
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || "/?#@,;:[]\\".contains(c))
    {
        errors.push(FieldError::new(
            format!("{at}/host"),
            format!(
                "must be a host name or an IP address, without scheme, port, path or user info (got {})",
                quoted(host)
            ),
        ));
    }
    if endpoint.port == 0 {
        errors.push(FieldError::new(
            format!("{at}/port"),
            "must be between 1 and 65535",
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn mapping(source: (&str, u16), target: (&str, u16)) -> EndpointMapping {
        EndpointMapping {
            source: Endpoint {
                host: source.0.to_owned(),
                port: source.1,
            },
            target: Endpoint {
                host: target.0.to_owned(),
                port: target.1,
            },
        }
    }

    type Pair<'a> = ((&'a str, u16), (&'a str, u16));

    fn mappings(list: &[Pair]) -> Mappings {
        Mappings::new(list.iter().map(|(s, t)| mapping(*s, *t)).collect()).expect("valid mappings")
    }

    fn db() -> Mappings {
        mappings(&[(("db.internal", 5432), ("db.mesh.local", 15432))])
    }

    /// Adapts one URI string.
    fn uri(m: &Mappings, s: &str) -> String {
        m.adapt(&json!(s)).as_str().unwrap().to_owned()
    }

    fn fields(errors: &[FieldError]) -> Vec<&str> {
        errors.iter().map(|e| e.field.as_str()).collect()
    }

    #[test]
    fn original_design_example() {
        let m = mappings(&[(("my-cf-service", 1234), ("my-k8s-service", 6789))]);
        let credentials =
            json!({"host": "my-cf-service", "port": 1234, "uri": "http://my-cf-service:1234"});
        assert_eq!(
            m.adapt(&credentials),
            json!({"host": "my-k8s-service", "port": 6789, "uri": "http://my-k8s-service:6789"})
        );
    }

    #[test]
    fn request_shape_deserializes_and_rejects_unknown_fields() {
        let m: Vec<EndpointMapping> = serde_json::from_value(json!([
            {"source": {"host": "a", "port": 1}, "target": {"host": "b", "port": 2}}
        ]))
        .unwrap();
        assert_eq!(m, vec![mapping(("a", 1), ("b", 2))]);
        let extra: Result<EndpointMapping, _> = serde_json::from_value(
            json!({"source": {"host": "a", "port": 1, "scheme": "http"}, "target": {"host": "b", "port": 2}}),
        );
        assert!(extra.is_err());
    }

    #[test]
    fn postgres_uris() {
        let m = db();
        assert_eq!(
            uri(
                &m,
                "postgres://user:p%40ss@db.internal:5432/app?sslmode=require"
            ),
            "postgres://user:p%40ss@db.mesh.local:15432/app?sslmode=require"
        );
        assert_eq!(
            uri(&m, "postgresql://app@db.internal:5432/app"),
            "postgresql://app@db.mesh.local:15432/app"
        );
        assert_eq!(
            uri(&m, "jdbc:postgresql://db.internal:5432/app"),
            "jdbc:postgresql://db.mesh.local:15432/app"
        );
        assert_eq!(
            uri(&m, "JDBC:PostgreSQL://db.internal:5432/app?user=x"),
            "JDBC:PostgreSQL://db.mesh.local:15432/app?user=x"
        );
        // Another port of the same host is another endpoint.
        assert_eq!(
            uri(&m, "postgres://db.internal:5433/app"),
            "postgres://db.internal:5433/app"
        );
    }

    #[test]
    fn uri_without_port_matches_the_scheme_default() {
        let m = db();
        assert_eq!(
            uri(&m, "postgres://u:p@db.internal/app"),
            "postgres://u:p@db.mesh.local:15432/app"
        );
        assert_eq!(
            uri(&m, "jdbc:postgresql://db.internal/app"),
            "jdbc:postgresql://db.mesh.local:15432/app"
        );
        // A target on the default port stays implicit; an explicit port stays explicit.
        let to_default = mappings(&[(("db.internal", 5432), ("db.mesh.local", 5432))]);
        assert_eq!(
            uri(&to_default, "postgres://db.internal/app"),
            "postgres://db.mesh.local/app"
        );
        assert_eq!(
            uri(&to_default, "postgres://db.internal:5432/app"),
            "postgres://db.mesh.local:5432/app"
        );
        // An unknown scheme without a port has no port to match.
        assert_eq!(
            uri(&m, "custom://db.internal/app"),
            "custom://db.internal/app"
        );
        assert_eq!(
            uri(&m, "custom://db.internal:5432/app"),
            "custom://db.mesh.local:15432/app"
        );
    }

    #[test]
    fn multi_host_uri_replaces_only_the_matching_host() {
        let m = mappings(&[
            (("h2", 5433), ("pg-replica.mesh", 6000)),
            (("b", 27017), ("mongo-b.mesh", 27017)),
        ]);
        assert_eq!(
            uri(
                &m,
                "postgres://u:p@h1:5432,h2:5433/db?target_session_attrs=any"
            ),
            "postgres://u:p@h1:5432,pg-replica.mesh:6000/db?target_session_attrs=any"
        );
        assert_eq!(
            uri(&m, "mongodb://u:p@a:27017,b:27017,c/x?replicaSet=rs0"),
            "mongodb://u:p@a:27017,mongo-b.mesh:27017,c/x?replicaSet=rs0"
        );
        assert_eq!(
            uri(&m, "mongodb://a,b/x"),
            "mongodb://a,mongo-b.mesh/x",
            "b uses the default port, and so does its target"
        );
    }

    #[test]
    fn amqp_uris() {
        let m = mappings(&[
            (("rabbit", 5672), ("rabbit.mesh", 5672)),
            (("rabbit", 5671), ("rabbit-tls.mesh", 25671)),
        ]);
        assert_eq!(
            uri(&m, "amqp://guest:guest@rabbit:5672/vhost"),
            "amqp://guest:guest@rabbit.mesh:5672/vhost"
        );
        assert_eq!(
            uri(&m, "amqp://guest:guest@rabbit/vhost"),
            "amqp://guest:guest@rabbit.mesh/vhost"
        );
        assert_eq!(
            uri(&m, "amqps://guest:guest@rabbit/vhost"),
            "amqps://guest:guest@rabbit-tls.mesh:25671/vhost"
        );
    }

    #[test]
    fn hostname_with_string_port_keeps_the_string() {
        let m = db();
        assert_eq!(
            m.adapt(&json!({"hostname": "db.internal", "port": "5432", "name": "app"})),
            json!({"hostname": "db.mesh.local", "port": "15432", "name": "app"})
        );
        assert_eq!(
            m.adapt(&json!({"host": "db.internal", "port": 5432})),
            json!({"host": "db.mesh.local", "port": 15432})
        );
    }

    #[test]
    fn host_and_hostname_together() {
        let m = db();
        assert_eq!(
            m.adapt(&json!({"host": "db.internal", "hostname": "db.internal", "port": 5432})),
            json!({"host": "db.mesh.local", "hostname": "db.mesh.local", "port": 15432})
        );
        // Only one matches: it and the port are replaced, the other stays.
        assert_eq!(
            m.adapt(&json!({"host": "10.0.0.7", "hostname": "db.internal", "port": 5432})),
            json!({"host": "10.0.0.7", "hostname": "db.mesh.local", "port": 15432})
        );
        // Both match, with different target ports: ambiguous, left alone.
        let split = mappings(&[(("a", 5432), ("x", 1)), (("b", 5432), ("y", 2))]);
        let both = json!({"host": "a", "hostname": "b", "port": 5432});
        assert_eq!(split.adapt(&both), both);
    }

    #[test]
    fn host_without_port_only_when_unambiguous() {
        let unambiguous = mappings(&[
            (("db.internal", 5432), ("db.mesh.local", 15432)),
            (("db.internal", 5433), ("db.mesh.local", 15433)),
        ]);
        assert_eq!(
            unambiguous.adapt(&json!({"host": "db.internal", "database": "app"})),
            json!({"host": "db.mesh.local", "database": "app"})
        );
        let ambiguous = mappings(&[
            (("db.internal", 5432), ("db-a.mesh.local", 15432)),
            (("db.internal", 5433), ("db-b.mesh.local", 15433)),
        ]);
        let creds = json!({"host": "db.internal", "database": "app"});
        assert_eq!(ambiguous.adapt(&creds), creds);
    }

    #[test]
    fn unusable_port_leaves_the_object_alone() {
        let m = db();
        for port in [
            json!(null),
            json!("abc"),
            json!(5432.5),
            json!(-1),
            json!(70000),
        ] {
            let creds = json!({"host": "db.internal", "port": port});
            assert_eq!(m.adapt(&creds), creds, "{port}");
        }
        // A port alone is nobody's.
        let lone = json!({"port": 5432, "uri": "x"});
        assert_eq!(m.adapt(&lone), lone);
    }

    #[test]
    fn nested_objects_and_arrays() {
        let m = mappings(&[
            (("pg-primary", 5432), ("primary.mesh", 5432)),
            (("pg-replica-1", 5432), ("replica-1.mesh", 5432)),
        ]);
        let creds = json!({
            "primary": {"host": "pg-primary", "port": 5432},
            "replicas": [
                {"host": "pg-replica-1", "port": 5432},
                {"host": "pg-replica-2", "port": 5432}
            ],
            "urls": {"write_url": "postgres://pg-primary/app", "read_url": ["postgres://pg-replica-1/app"]},
            "count": 2,
            "tls": true,
            "note": null
        });
        assert_eq!(
            m.adapt(&creds),
            json!({
                "primary": {"host": "primary.mesh", "port": 5432},
                "replicas": [
                    {"host": "replica-1.mesh", "port": 5432},
                    {"host": "pg-replica-2", "port": 5432}
                ],
                "urls": {"write_url": "postgres://primary.mesh/app", "read_url": ["postgres://replica-1.mesh/app"]},
                "count": 2,
                "tls": true,
                "note": null
            })
        );
    }

    #[test]
    fn key_order_is_preserved() {
        let m = db();
        let adapted = m.adapt(&json!({"z": 1, "port": 5432, "a": 2, "host": "db.internal"}));
        let keys: Vec<&str> = adapted
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys, ["z", "port", "a", "host"]);
        assert_eq!(
            serde_json::to_string(&adapted).unwrap(),
            r#"{"z":1,"port":15432,"a":2,"host":"db.mesh.local"}"#
        );
    }

    #[test]
    fn ipv6_literals() {
        let m = mappings(&[
            (("::1", 5432), ("2001:db8::10", 6432)),
            (("[fd00::1]", 6379), ("redis.mesh", 6379)),
        ]);
        assert_eq!(
            uri(&m, "postgres://u:p@[::1]:5432/app"),
            "postgres://u:p@[2001:db8::10]:6432/app"
        );
        assert_eq!(
            uri(&m, "postgres://[0:0:0:0:0:0:0:1]/app"),
            "postgres://[2001:db8::10]:6432/app"
        );
        assert_eq!(
            uri(&m, "redis://:secret@[FD00::1]:6379/0"),
            "redis://:secret@redis.mesh:6379/0"
        );
        assert_eq!(
            m.adapt(&json!({"host": "::1", "port": 5432})),
            json!({"host": "2001:db8::10", "port": 6432})
        );
        assert_eq!(
            m.adapt(&json!({"host": "[::1]", "port": 5432})),
            json!({"host": "[2001:db8::10]", "port": 6432})
        );
        // A bare IPv6 address in a URI is not a valid authority: left alone.
        assert_eq!(
            uri(&m, "postgres://::1:5432/app"),
            "postgres://::1:5432/app"
        );
    }

    #[test]
    fn untouched_credentials_are_returned_unchanged() {
        let m = db();
        let creds = json!({
            "host": "other.internal",
            "port": 5432,
            "uri": "postgres://u:p@other.internal:5432/app",
            "jdbcUrl": "jdbc:postgresql://other.internal/app",
            "plain": "db.internal:5432",
            "mailto": "mailto:admin@db.internal",
            "list": [1, "two", {"three": [3.5, false]}],
            "empty": {}
        });
        assert_eq!(m.adapt(&creds), creds);
        assert_eq!(m.adapt(&json!("db.internal")), json!("db.internal"));
        assert_eq!(m.adapt(&json!(5432)), json!(5432));
    }

    #[test]
    fn hosts_match_case_insensitively_and_take_the_target_spelling() {
        let m = mappings(&[(("My-CF-Service", 1234), ("My-K8s-Service", 6789))]);
        assert_eq!(
            m.adapt(
                &json!({"host": "MY-CF-SERVICE", "port": 1234, "url": "https://my-cf-service:1234"})
            ),
            json!({"host": "My-K8s-Service", "port": 6789, "url": "https://My-K8s-Service:6789"})
        );
    }

    #[test]
    fn paths_queries_and_fragments_are_kept_byte_for_byte() {
        let m = mappings(&[(("api", 80), ("api.mesh", 8080))]);
        for (before, after) in [
            ("http://api", "http://api.mesh:8080"),
            ("http://api:80", "http://api.mesh:8080"),
            ("http://api?x=1", "http://api.mesh:8080?x=1"),
            ("http://api#top", "http://api.mesh:8080#top"),
            (
                "http://api/a//b/../c%2F?q=a@b&r=http://api:80#f?g/h",
                "http://api.mesh:8080/a//b/../c%2F?q=a@b&r=http://api:80#f?g/h",
            ),
            ("HTTP://API:80/", "HTTP://api.mesh:8080/"),
        ] {
            assert_eq!(uri(&m, before), after, "{before}");
        }
    }

    #[test]
    fn user_info_is_kept() {
        let m = db();
        assert_eq!(
            uri(&m, "postgres://us%3Aer:p%40ss%3Aw0rd@db.internal:5432/app"),
            "postgres://us%3Aer:p%40ss%3Aw0rd@db.mesh.local:15432/app"
        );
        // The last '@' ends the user info; ':' in a password does not start a port.
        assert_eq!(
            uri(&m, "postgres://user:pa:ss@word@db.internal:5432/app"),
            "postgres://user:pa:ss@word@db.mesh.local:15432/app"
        );
        // A user info that names the source host is not a host.
        assert_eq!(
            uri(&m, "postgres://db.internal:5432@other:5432/app"),
            "postgres://db.internal:5432@other:5432/app"
        );
        // An unencoded '/' in the password ends the authority: the URI is left alone.
        let broken = "postgres://user:pa/ss@db.internal:5432/app";
        assert_eq!(uri(&m, broken), broken);
    }

    #[test]
    fn any_key_and_jdbc_variants() {
        let m = mappings(&[
            (("mysql.internal", 3306), ("mysql.mesh", 13306)),
            (("mssql.internal", 1433), ("mssql.mesh", 1433)),
        ]);
        let creds = json!({
            "jdbcUrl": "jdbc:mysql://mysql.internal:3306/app?useSSL=true",
            "whatever": "mysql://u:p@mysql.internal/app",
            "sqlserver": "jdbc:sqlserver://mssql.internal:1433;databaseName=app;password=p@ss",
            "oracle": "jdbc:oracle:thin:@mysql.internal:3306:orcl"
        });
        assert_eq!(
            m.adapt(&creds),
            json!({
                "jdbcUrl": "jdbc:mysql://mysql.mesh:13306/app?useSSL=true",
                "whatever": "mysql://u:p@mysql.mesh:13306/app",
                "sqlserver": "jdbc:sqlserver://mssql.mesh:1433;databaseName=app;password=p@ss",
                "oracle": "jdbc:oracle:thin:@mysql.internal:3306:orcl"
            })
        );
    }

    #[test]
    fn not_uris() {
        let m = mappings(&[(("x", 80), ("y", 81))]);
        for s in [
            " http://x",
            "1http://x",
            "http:/x",
            "http//x",
            "jdbc:",
            "jdbc://x",
            "://x",
            "http://",
            "http:///path",
            "http://x:/p",
            "http://x:8o/p",
            "http://[x/p",
            "é://x",
        ] {
            assert_eq!(uri(&m, s), s, "{s}");
        }
    }

    #[test]
    fn mappings_do_not_chain() {
        let m = mappings(&[(("a", 80), ("b", 80)), (("b", 80), ("c", 80))]);
        assert_eq!(
            m.adapt(&json!({"host": "a", "port": 80, "uri": "http://a/", "other": "http://b"})),
            json!({"host": "b", "port": 80, "uri": "http://b/", "other": "http://c"})
        );
    }

    #[test]
    fn empty_mapping_list_is_rejected() {
        let errors = Mappings::new(Vec::new()).unwrap_err();
        assert_eq!(fields(&errors), ["/endpoint_mappings"]);
        let errors = Mappings::new_at(Vec::new(), "/spec/binding").unwrap_err();
        assert_eq!(fields(&errors), ["/spec/binding"]);
    }

    #[test]
    fn invalid_mappings_are_rejected_with_pointers() {
        let errors = Mappings::new(vec![
            mapping(("ok", 1), ("ok2", 2)),
            mapping(("a", 0), ("", 5)),
            mapping(("http://a", 1), ("b:80", 65535)),
            mapping(("[not-v6]", 1), ("user@b", 1)),
            mapping(("c d", 1), ("::1", 0)),
        ])
        .unwrap_err();
        assert_eq!(
            fields(&errors),
            [
                "/endpoint_mappings/1/source/port",
                "/endpoint_mappings/1/target/host",
                "/endpoint_mappings/2/source/host",
                "/endpoint_mappings/2/target/host",
                "/endpoint_mappings/3/source/host",
                "/endpoint_mappings/3/target/host",
                "/endpoint_mappings/4/source/host",
                "/endpoint_mappings/4/target/port",
            ]
        );
        assert_eq!(errors[0].message, "must be between 1 and 65535");
        assert_eq!(errors[1].message, "must not be empty");
    }

    #[test]
    fn conflicting_sources_are_rejected() {
        let errors = Mappings::new(vec![
            mapping(("db", 5432), ("a", 1)),
            mapping(("DB", 5432), ("A", 1)), // same target, other spelling: fine
            mapping(("db", 5433), ("b", 1)), // other source port: fine
            mapping(("Db", 5432), ("c", 1)), // conflict with 0
            mapping(("::1", 1), ("x", 1)),
            mapping(("[0::1]", 1), ("x", 2)), // conflict with 4
        ])
        .unwrap_err();
        assert_eq!(
            fields(&errors),
            ["/endpoint_mappings/3/source", "/endpoint_mappings/5/source"]
        );
        assert_eq!(
            errors[0].message,
            "Db:5432 is mapped to c:1, but /endpoint_mappings/0 already maps it to a:1"
        );
        assert_eq!(
            errors[1].message,
            "[0::1]:1 is mapped to x:2, but /endpoint_mappings/4 already maps it to x:1"
        );
        // Repeating a mapping is not a conflict.
        assert!(
            Mappings::new(vec![
                mapping(("db", 5432), ("a", 1)),
                mapping(("db", 5432), ("a", 1)),
            ])
            .is_ok()
        );
    }
}
