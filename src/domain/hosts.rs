//! Host names with an optional leading wildcard label (`*.example.org`).

use super::names::{check_dns1123_subdomain, quoted, string_newtype};

fn check_host_pattern(s: &str) -> Result<(), String> {
    let rest = s.strip_prefix("*.").unwrap_or(s);
    if check_dns1123_subdomain(rest).is_ok() && s.len() <= 253 {
        Ok(())
    } else {
        Err(format!(
            "must be a DNS name such as api.example.org, or a wildcard such as *.example.org (a bare * is not allowed; got {})",
            quoted(s)
        ))
    }
}

string_newtype!(
    /// A DNS name, or a wildcard `*.` followed by a DNS name.
    HostPattern, check = check_host_pattern,
    pattern = "^(\\*\\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$", min = 1, max = 253,
    example = "*.nginx.example.org"
);

impl HostPattern {
    pub fn is_wildcard(&self) -> bool {
        self.as_str().starts_with("*.")
    }

    /// True when the pattern has at least two labels after any wildcard, as an FQDN does.
    pub fn is_qualified(&self) -> bool {
        self.as_str()
            .strip_prefix("*.")
            .unwrap_or(self.as_str())
            .contains('.')
    }

    /// Whether a concrete or wildcard host `other` falls under this pattern.
    pub fn covers(&self, other: &str) -> bool {
        match self.as_str().strip_prefix('*') {
            Some(suffix) => other.ends_with(suffix) && other.len() > suffix.len(),
            None => self.as_str() == other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_only_as_first_label() {
        for ok in ["api.example.org", "*.example.org", "localhost"] {
            assert!(HostPattern::try_from(ok.to_string()).is_ok(), "{ok}");
        }
        for bad in [
            "*",
            "a.*.org",
            "*example.org",
            "**.x.org",
            "API.example.org",
        ] {
            assert!(HostPattern::try_from(bad.to_string()).is_err(), "{bad}");
        }
    }

    #[test]
    fn coverage() {
        let w: HostPattern = "*.nginx.example.org".parse().unwrap();
        assert!(w.covers("a.nginx.example.org"));
        assert!(w.covers("*.v1.nginx.example.org"));
        assert!(!w.covers("nginx.example.org"));
        assert!(w.is_wildcard());
        assert!(!"localhost".parse::<HostPattern>().unwrap().is_qualified());
    }
}
