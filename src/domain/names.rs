//! Names and DNS names. Each type can only be built by parsing, so a value that exists is valid.

/// Defines a string newtype that parses through `$check` and serializes as a plain string.
macro_rules! string_newtype {
    (
        $(#[$meta:meta])*
        $name:ident, check = $check:path, pattern = $pattern:literal, min = $min:tt, max = $max:tt, example = $example:literal
    ) => {
        $(#[$meta])*
        #[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
        #[serde(try_from = "String", into = "String")]
        #[schema(value_type = String, pattern = $pattern, max_length = $max, min_length = $min, example = $example)]
        pub struct $name(String);

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = String;
            fn try_from(value: String) -> Result<Self, String> {
                $check(&value)?;
                Ok(Self(value))
            }
        }

        impl std::str::FromStr for $name {
            type Err = String;
            fn from_str(value: &str) -> Result<Self, String> {
                Self::try_from(value.to_owned())
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}
pub(crate) use string_newtype;

const DNS1123_LABEL_RULE: &str = "must be a DNS-1123 label: lowercase letters, digits and '-', starting and ending with a letter or digit, at most 63 characters";

pub fn check_dns1123_label(s: &str) -> Result<(), String> {
    let ok = !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(format!("{DNS1123_LABEL_RULE} (got {})", quoted(s)))
    }
}

fn check_dns1035_label(s: &str) -> Result<(), String> {
    let ok = check_dns1123_label(s).is_ok() && s.starts_with(|c: char| c.is_ascii_lowercase());
    if ok {
        Ok(())
    } else {
        Err(format!(
            "must be a DNS-1035 label (a Kubernetes Service name): lowercase letters, digits and '-', starting with a letter, ending with a letter or digit, at most 63 characters (got {})",
            quoted(s)
        ))
    }
}

pub fn check_dns1123_subdomain(s: &str) -> Result<(), String> {
    let ok = !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|label| check_dns1123_label(label).is_ok());
    if ok {
        Ok(())
    } else {
        Err(format!(
            "must be a DNS-1123 subdomain: dot-separated DNS-1123 labels (lowercase letters, digits and '-'), at most 253 characters (got {})",
            quoted(s)
        ))
    }
}

fn check_version(s: &str) -> Result<(), String> {
    if is_label_value(s) && !s.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "must be 1-63 characters of letters, digits, '-', '_' or '.', starting and ending with a letter or digit (got {})",
            quoted(s)
        ))
    }
}

/// Kubernetes label value syntax (empty allowed).
pub fn is_label_value(s: &str) -> bool {
    s.is_empty()
        || (s.len() <= 63
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
            && s.starts_with(|c: char| c.is_ascii_alphanumeric())
            && s.ends_with(|c: char| c.is_ascii_alphanumeric()))
}

/// Shows a user's value in a message, cut short so a huge value cannot flood a response.
pub fn quoted(s: &str) -> String {
    const MAX: usize = 80;
    if s.chars().count() > MAX {
        let cut: String = s.chars().take(MAX).collect();
        format!("\"{cut}...\"")
    } else {
        format!("\"{s}\"")
    }
}

string_newtype!(
    /// A resource name: a DNS-1123 label, because names become Kubernetes object names.
    Name, check = check_dns1123_label, pattern = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", min = 1, max = 63, example = "httpbin"
);

string_newtype!(
    /// A Kubernetes Service name (DNS-1035 label).
    ServiceName, check = check_dns1035_label, pattern = "^[a-z]([-a-z0-9]*[a-z0-9])?$", min = 1, max = 63, example = "httpbin"
);

string_newtype!(
    /// A DNS-1123 subdomain: service accounts, Secret names, host names, cluster identities.
    DnsName, check = check_dns1123_subdomain,
    pattern = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$", min = 1, max = 253,
    example = "cluster02.mesh.example.com"
);

string_newtype!(
    /// A composite app version: label-value syntax, because it becomes a label value.
    VersionName, check = check_version, pattern = "^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$", min = 1, max = 63, example = "v1"
);

impl Name {
    /// For names built from other valid names by the program itself (e.g. defaults).
    pub fn from_static(s: &'static str) -> Self {
        check_dns1123_label(s).expect("static names are valid");
        Self(s.to_owned())
    }
}

impl DnsName {
    pub fn from_static(s: &'static str) -> Self {
        check_dns1123_subdomain(s).expect("static DNS names are valid");
        Self(s.to_owned())
    }

    /// A DNS name made of valid labels; used to build FQDNs such as `svc.ns.svc.cluster.local`.
    pub fn join(labels: &[&str]) -> Result<Self, String> {
        Self::try_from(labels.join("."))
    }
}

impl From<Name> for DnsName {
    fn from(name: Name) -> Self {
        // A DNS-1123 label is a one-label DNS-1123 subdomain.
        DnsName(name.0)
    }
}

impl From<ServiceName> for Name {
    fn from(name: ServiceName) -> Self {
        Name(name.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_accept_kubernetes_names_only() {
        for ok in ["a", "httpbin", "a-b-1", &"x".repeat(63)] {
            assert!(Name::try_from(ok.to_string()).is_ok(), "{ok}");
        }
        for bad in ["", "A", "-a", "a-", "a.b", "a_b", &"x".repeat(64)] {
            let err = Name::try_from(bad.to_string()).unwrap_err();
            assert!(err.contains("DNS-1123 label"), "{bad}: {err}");
        }
    }

    #[test]
    fn service_names_start_with_a_letter() {
        assert!(ServiceName::try_from("1abc".to_string()).is_err());
        assert!(ServiceName::try_from("abc1".to_string()).is_ok());
    }

    #[test]
    fn subdomains_are_dotted_labels() {
        assert!(DnsName::try_from("cluster02.mesh.example.com".to_string()).is_ok());
        assert!(DnsName::try_from("a..b".to_string()).is_err());
        assert!(DnsName::try_from("Upper.example".to_string()).is_err());
        assert!(DnsName::try_from(format!("{}.com", "a".repeat(250))).is_err());
    }

    #[test]
    fn versions_are_label_values() {
        assert!(VersionName::try_from("v1.0_rc-1".to_string()).is_ok());
        assert!(VersionName::try_from("".to_string()).is_err());
        assert!(VersionName::try_from("v1/2".to_string()).is_err());
    }

    #[test]
    fn long_values_are_cut_in_messages() {
        let err = Name::try_from("X".repeat(500)).unwrap_err();
        assert!(err.len() < 300);
    }
}
