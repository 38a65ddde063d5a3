//! Reconciliation settings of a traffic intent set (`spec.sync`): whether drift is repaired,
//! and how often the set is checked against its clusters.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::schema::string_schema;
use super::values::GoDuration;

/// How often a set is checked: a duration between 1s and 24h (`30s`, `5m`, `1h`).
///
/// The server never checks more often than its `--reconcile-min-interval` (default 10s), so
/// an interval below that floor means "as often as the server allows"; 1s is accepted so
/// that test servers with a lower floor can use it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SyncInterval(GoDuration);

string_schema!(
    SyncInterval,
    "How often the set is checked against its clusters: a duration from 1s to 24h, e.g. 30s, 5m, 1h. \
The server checks no more often than its --reconcile-min-interval (default 10s).",
    example = "5m",
    pattern = "^([0-9]+(\\.[0-9]+)?(ns|us|µs|μs|ms|s|m|h))+$"
);

impl SyncInterval {
    pub const MIN: Duration = Duration::from_secs(1);
    pub const MAX: Duration = Duration::from_secs(24 * 3600);

    pub fn as_duration(self) -> Duration {
        Duration::from_nanos(self.0.as_nanos())
    }
}

impl Default for SyncInterval {
    /// Five minutes.
    fn default() -> Self {
        SyncInterval(GoDuration::from_millis(5 * 60 * 1000))
    }
}

impl TryFrom<String> for SyncInterval {
    type Error = String;
    fn try_from(value: String) -> Result<Self, String> {
        let duration = GoDuration::try_from(value.clone())?;
        let d = Duration::from_nanos(duration.as_nanos());
        if d < Self::MIN {
            return Err(format!("must be at least 1s (got \"{value}\")"));
        }
        if d > Self::MAX {
            return Err(format!("must be at most 24h (got \"{value}\")"));
        }
        Ok(SyncInterval(duration))
    }
}

impl std::str::FromStr for SyncInterval {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Self::try_from(s.to_owned())
    }
}

impl fmt::Display for SyncInterval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl From<SyncInterval> for String {
    fn from(i: SyncInterval) -> String {
        i.to_string()
    }
}

/// `spec.sync` of a traffic intent set. A deployed set is checked against its clusters every
/// `interval` (and on `POST .../reconcile`); drift (changed or missing objects, extra objects
/// with the set's labels) is repaired by a deploy of the same revision when `selfHeal` is on,
/// and only reported in `GET .../status` (`sync`) otherwise.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SyncSpec {
    /// Repair drift by redeploying the latest deployed revision (default false: report only).
    #[serde(default)]
    pub self_heal: bool,
    /// How often the set is checked (default `5m`).
    #[serde(default)]
    pub interval: SyncInterval,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_parse_within_bounds() {
        let secs = |s: &str| s.parse::<SyncInterval>().map(|i| i.as_duration().as_secs());
        assert_eq!(secs("30s"), Ok(30));
        assert_eq!(secs("5m"), Ok(300));
        assert_eq!(secs("1h"), Ok(3600));
        assert_eq!(secs("1s"), Ok(1));
        assert!(secs("500ms").unwrap_err().contains("at least 1s"));
        assert!(secs("25h").unwrap_err().contains("at most 24h"));
        assert!(secs("often").unwrap_err().contains("must be a duration"));
        assert_eq!(SyncInterval::default().to_string(), "5m");
    }

    #[test]
    fn sync_defaults_to_report_only_every_five_minutes() {
        let spec: SyncSpec = serde_json::from_str("{}").unwrap();
        assert_eq!(spec, SyncSpec::default());
        assert!(!spec.self_heal);
        assert_eq!(spec.interval.as_duration(), Duration::from_secs(300));
        assert_eq!(
            serde_json::to_value(spec).unwrap(),
            serde_json::json!({"selfHeal": false, "interval": "5m"})
        );
    }
}
