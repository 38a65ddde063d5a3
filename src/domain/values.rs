//! Small value types: ports, durations, percentages, counts, addresses and ranges.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::names::{DnsName, check_dns1123_subdomain, quoted};
use super::schema::string_schema;

/// A whole number as JSON Schema counts one: an integer, or a number with a zero fraction
/// (`65535.0`). Integer domain types read through it, so every integer field accepts both, and
/// a value beyond 64 bits (`2^64`) is refused by the type's range check like any other (422),
/// not as a wrong type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WholeNumber(pub i128);

impl<'de> Deserialize<'de> for WholeNumber {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = WholeNumber;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an integer")
            }
            fn visit_i64<E>(self, v: i64) -> Result<WholeNumber, E> {
                Ok(WholeNumber(v.into()))
            }
            fn visit_u64<E>(self, v: u64) -> Result<WholeNumber, E> {
                Ok(WholeNumber(v.into()))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<WholeNumber, E> {
                if v.is_finite() && v.fract() == 0.0 {
                    // Saturates beyond i128, far outside every range checked.
                    Ok(WholeNumber(v as i128))
                } else {
                    Err(E::custom(format!("must be a whole number (got {v})")))
                }
            }
        }
        d.deserialize_any(Visitor)
    }
}

impl WholeNumber {
    /// Checks the value with `check` (which takes an i64); a value beyond i64 gets `check`'s
    /// message for the nearest i64, naming the value given.
    pub fn checked<T>(self, check: impl Fn(i64) -> Result<T, String>) -> Result<T, String> {
        match i64::try_from(self.0) {
            Ok(v) => check(v),
            Err(_) => {
                let nearest = if self.0 > 0 { i64::MAX } else { i64::MIN };
                check(nearest).map_err(|e| e.replace(&nearest.to_string(), &self.0.to_string()))
            }
        }
    }
}

/// A TCP/UDP port, 1-65535.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
#[serde(try_from = "WholeNumber", into = "u16")]
#[schema(value_type = u16, minimum = 1, maximum = 65535, example = 8000)]
pub struct Port(u16);

impl TryFrom<WholeNumber> for Port {
    type Error = String;
    fn try_from(value: WholeNumber) -> Result<Self, String> {
        value.checked(Port::try_from)
    }
}

impl Port {
    pub const fn new_static(port: u16) -> Self {
        assert!(port > 0);
        Port(port)
    }

    pub fn get(self) -> u16 {
        self.0
    }
}

impl TryFrom<i64> for Port {
    type Error = String;
    fn try_from(value: i64) -> Result<Self, String> {
        match u16::try_from(value) {
            Ok(p) if p > 0 => Ok(Port(p)),
            _ => Err(format!("must be between 1 and 65535 (got {value})")),
        }
    }
}

impl From<Port> for u16 {
    fn from(port: Port) -> u16 {
        port.0
    }
}

impl fmt::Display for Port {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A whole number from `min` to `max`: read from a JSON integer (out of range: "must be between
/// min and max"), written as a u32.
macro_rules! bounded_u32 {
    ($(#[$doc:meta])* $name:ident, min = $min:tt, max = $max:tt, example = $example:tt) => {
        $(#[$doc])*
        #[derive(
            Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
        )]
        #[serde(try_from = "WholeNumber", into = "u32")]
        #[schema(value_type = u32, minimum = $min, maximum = $max, example = $example)]
        pub struct $name(u32);

        impl $name {
            pub fn get(self) -> u32 {
                self.0
            }
        }

        impl TryFrom<WholeNumber> for $name {
            type Error = String;
            fn try_from(value: WholeNumber) -> Result<Self, String> {
                value.checked($name::try_from)
            }
        }

        impl TryFrom<i64> for $name {
            type Error = String;
            fn try_from(value: i64) -> Result<Self, String> {
                if ($min..=$max).contains(&value) {
                    Ok($name(value as u32))
                } else {
                    Err(format!("must be between {} and {} (got {value})", $min, $max))
                }
            }
        }

        impl From<$name> for u32 {
            fn from(c: $name) -> u32 {
                c.0
            }
        }
    };
}

bounded_u32!(
    /// A positive count (connections, requests, retries, errors): 1 to 2^31-1, as Istio's int32 fields.
    Count, min = 1, max = 2147483647, example = 100
);
bounded_u32!(
    /// A non-negative count, 0 to 2^31-1 (e.g. `maxRetries: 0` disables retries).
    Amount, min = 0, max = 2147483647, example = 3
);
bounded_u32!(
    /// A whole percentage 0-100 (e.g. `maxEjectionPercent`).
    WholePercent, min = 0, max = 100, example = 50
);

/// A percentage 0-100 with fractions (e.g. fault injection `percentage: 0.1`).
#[derive(Clone, Copy, Debug, PartialEq, PartialOrd, Serialize, Deserialize, ToSchema)]
#[serde(try_from = "f64", into = "f64")]
#[schema(value_type = f64, minimum = 0, maximum = 100, example = 10.0)]
pub struct Percent(f64);

impl Percent {
    pub fn get(self) -> f64 {
        self.0
    }
}

impl TryFrom<f64> for Percent {
    type Error = String;
    fn try_from(value: f64) -> Result<Self, String> {
        if value.is_finite() && (0.0..=100.0).contains(&value) {
            Ok(Percent(value))
        } else {
            Err(format!("must be between 0 and 100 (got {value})"))
        }
    }
}

impl From<Percent> for f64 {
    fn from(p: Percent) -> f64 {
        p.0
    }
}

/// A Go-style duration (`500ms`, `10s`, `1m30s`, `1h`) of at least 1ms.
///
/// Kept in nanoseconds and written back in one canonical unit, so equal durations render
/// byte-identically whatever the user wrote (`90s` and `1m30s` both become `90s`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct GoDuration {
    nanos: u64,
}

const NANOS_PER_MS: u64 = 1_000_000;
/// Go's time.Duration is an int64 of nanoseconds; nothing longer can be represented.
const MAX_NANOS: u64 = i64::MAX as u64;

string_schema!(
    GoDuration,
    "A Go-style duration of at least 1ms, e.g. 500ms, 10s, 1m30s, 1h.",
    example = "10s",
    pattern = "^([0-9]+(\\.[0-9]+)?(ns|us|µs|μs|ms|s|m|h))+$"
);

impl GoDuration {
    pub fn from_millis(ms: u64) -> Self {
        assert!(ms >= 1);
        GoDuration {
            nanos: ms * NANOS_PER_MS,
        }
    }

    pub fn as_nanos(self) -> u64 {
        self.nanos
    }

    fn parse(s: &str) -> Result<u64, String> {
        let invalid = || {
            format!(
                "must be a duration such as 500ms, 10s, 1m30s or 1h (units ns, us, ms, s, m, h; got {})",
                quoted(s)
            )
        };
        if s.is_empty() {
            return Err(invalid());
        }
        let mut rest = s;
        let mut total: u128 = 0;
        while !rest.is_empty() {
            let int_end = rest
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(rest.len());
            let int_part = &rest[..int_end];
            rest = &rest[int_end..];
            let mut frac_part = "";
            if let Some(after_dot) = rest.strip_prefix('.') {
                let frac_end = after_dot
                    .find(|c: char| !c.is_ascii_digit())
                    .unwrap_or(after_dot.len());
                frac_part = &after_dot[..frac_end];
                rest = &after_dot[frac_end..];
                if frac_part.is_empty() {
                    return Err(invalid());
                }
            }
            if int_part.is_empty() {
                return Err(invalid());
            }
            let unit_end = rest
                .find(|c: char| c.is_ascii_digit() || c == '.')
                .unwrap_or(rest.len());
            let unit: u128 = match &rest[..unit_end] {
                "ns" => 1,
                "us" | "µs" | "μs" => 1_000,
                "ms" => 1_000_000,
                "s" => 1_000_000_000,
                "m" => 60_000_000_000,
                "h" => 3_600_000_000_000,
                _ => return Err(invalid()),
            };
            rest = &rest[unit_end..];
            let whole: u128 = int_part.parse().map_err(|_| invalid())?;
            total = total.saturating_add(whole.saturating_mul(unit));
            if !frac_part.is_empty() {
                // Only the digits that can matter at nanosecond precision.
                let digits = &frac_part[..frac_part.len().min(18)];
                let frac: u128 = digits.parse().map_err(|_| invalid())?;
                let scale = 10u128.pow(digits.len() as u32);
                total = total.saturating_add(frac * unit / scale);
            }
        }
        if total > u128::from(MAX_NANOS) {
            return Err(format!("is too long (got {})", quoted(s)));
        }
        let nanos = total as u64;
        if nanos < NANOS_PER_MS {
            return Err(format!("must be at least 1ms (got {})", quoted(s)));
        }
        Ok(nanos)
    }
}

impl TryFrom<String> for GoDuration {
    type Error = String;
    fn try_from(value: String) -> Result<Self, String> {
        Ok(GoDuration {
            nanos: Self::parse(&value)?,
        })
    }
}

impl FromStr for GoDuration {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Self::try_from(s.to_owned())
    }
}

impl fmt::Display for GoDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const UNITS: [(u64, &str); 6] = [
            (3_600_000_000_000, "h"),
            (60_000_000_000, "m"),
            (1_000_000_000, "s"),
            (1_000_000, "ms"),
            (1_000, "us"),
            (1, "ns"),
        ];
        let (size, unit) = UNITS
            .iter()
            .find(|(size, _)| self.nanos.is_multiple_of(*size))
            .expect("1ns divides everything");
        write!(f, "{}{unit}", self.nanos / size)
    }
}

impl From<GoDuration> for String {
    fn from(d: GoDuration) -> String {
        d.to_string()
    }
}

/// An IP range in CIDR notation, e.g. the VIP range `240.240.0.0/16`.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
#[serde(try_from = "String", into = "String")]
#[schema(value_type = String, example = "240.240.0.0/16")]
pub struct Cidr(IpNet);

impl Cidr {
    pub fn net(self) -> IpNet {
        self.0
    }
}

impl TryFrom<String> for Cidr {
    type Error = String;
    fn try_from(value: String) -> Result<Self, String> {
        let net: IpNet = value.parse().map_err(|_| {
            format!(
                "must be an IP range in CIDR notation such as 240.240.0.0/16 (got {})",
                quoted(&value)
            )
        })?;
        if net.trunc() != net {
            return Err(format!(
                "has host bits set; did you mean {}? (got {})",
                net.trunc(),
                quoted(&value)
            ));
        }
        Ok(Cidr(net))
    }
}

impl FromStr for Cidr {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Self::try_from(s.to_owned())
    }
}

impl From<Cidr> for String {
    fn from(c: Cidr) -> String {
        c.0.to_string()
    }
}

/// Where a gateway can be reached: an IP address or a DNS name.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum HostAddress {
    Ip(IpAddr),
    Dns(DnsName),
}

string_schema!(
    HostAddress,
    "An IP address or a DNS name.",
    example = "198.51.100.10"
);

impl HostAddress {
    pub fn is_ip(&self) -> bool {
        matches!(self, HostAddress::Ip(_))
    }
}

impl TryFrom<String> for HostAddress {
    type Error = String;
    fn try_from(value: String) -> Result<Self, String> {
        if let Ok(ip) = value.parse::<IpAddr>() {
            return Ok(HostAddress::Ip(ip));
        }
        check_dns1123_subdomain(&value).map_err(|_| {
            format!(
                "must be an IP address or a DNS name (got {})",
                quoted(&value)
            )
        })?;
        Ok(HostAddress::Dns(DnsName::try_from(value)?))
    }
}

impl fmt::Display for HostAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostAddress::Ip(ip) => ip.fmt(f),
            HostAddress::Dns(name) => name.fmt(f),
        }
    }
}

impl From<HostAddress> for String {
    fn from(a: HostAddress) -> String {
        a.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_1_to_65535() {
        assert!(Port::try_from(0).is_err());
        assert!(Port::try_from(65536).is_err());
        assert!(Port::try_from(-1).is_err());
        assert_eq!(Port::try_from(65535).unwrap().get(), 65535);
    }

    #[test]
    fn integers_read_whole_floats_and_refuse_huge_values_by_range() {
        let port = |json: &str| serde_json::from_str::<Port>(json).map_err(|e| e.to_string());
        assert_eq!(port("65535.0").unwrap().get(), 65535);
        assert_eq!(port("8e3").unwrap().get(), 8000);
        for huge in ["9223372036854775808", "18446744073709551616"] {
            let e = port(huge).unwrap_err();
            assert!(
                e.starts_with(&format!("must be between 1 and 65535 (got {huge})")),
                "{e}"
            );
        }
        assert!(
            port("1.5")
                .unwrap_err()
                .starts_with("must be a whole number")
        );
        assert!(port("\"80\"").unwrap_err().contains("expected an integer"));
        assert_eq!(serde_json::from_str::<Count>("100.0").unwrap().get(), 100);
    }

    #[test]
    fn durations_parse_go_syntax() {
        let d = |s: &str| s.parse::<GoDuration>().map(|d| d.as_nanos());
        assert_eq!(d("1ms"), Ok(1_000_000));
        assert_eq!(d("1m30s"), Ok(90_000_000_000));
        assert_eq!(d("1.5s"), Ok(1_500_000_000));
        assert_eq!(d("2h"), Ok(7_200_000_000_000));
        assert_eq!(d("1500us"), Ok(1_500_000));
        assert!(d("999us").unwrap_err().contains("at least 1ms"));
        assert!(d("0s").unwrap_err().contains("at least 1ms"));
        for bad in ["", "10", "s", "1.s", "-1s", "1d", "1 s", "1sm", ".5s"] {
            assert!(d(bad).is_err(), "{bad}");
        }
        assert!(d("100000000h").unwrap_err().contains("too long"));
    }

    #[test]
    fn durations_render_canonically() {
        let r = |s: &str| s.parse::<GoDuration>().unwrap().to_string();
        assert_eq!(r("1m30s"), "90s");
        assert_eq!(r("60s"), "1m");
        assert_eq!(r("1.5s"), "1500ms");
        assert_eq!(r("3600000ms"), "1h");
        assert_eq!(r("1001us"), "1001us");
    }

    #[test]
    fn cidrs_must_be_network_addresses() {
        assert!("240.240.0.0/16".parse::<Cidr>().is_ok());
        assert!(
            "240.240.1.0/16"
                .parse::<Cidr>()
                .unwrap_err()
                .contains("did you mean 240.240.0.0/16")
        );
        assert!("nonsense".parse::<Cidr>().is_err());
        assert!("fd00::/64".parse::<Cidr>().is_ok());
    }

    #[test]
    fn host_addresses_are_ips_or_dns_names() {
        assert!(
            HostAddress::try_from("198.51.100.10".to_string())
                .unwrap()
                .is_ip()
        );
        assert!(
            !HostAddress::try_from("gw.example.com".to_string())
                .unwrap()
                .is_ip()
        );
        assert!(HostAddress::try_from("not a host".to_string()).is_err());
    }

    #[test]
    fn percentages_are_bounded() {
        assert!(Percent::try_from(100.5).is_err());
        assert!(Percent::try_from(f64::NAN).is_err());
        assert!(WholePercent::try_from(101).is_err());
        assert!(Count::try_from(0).is_err());
        assert!(Amount::try_from(0).is_ok());
    }
}
