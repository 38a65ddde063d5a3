//! What the requests a deploy sent to an API server were for, from their method and path: the
//! deploy benchmark's targets count writes and per-object reads apart from the constant
//! discovery and per-kind LIST requests.

use std::fmt;

/// What one request to the API server did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequestKind {
    /// PATCH, PUT, POST or DELETE.
    Write,
    /// `/version`, `/api`, `/apis` and a group's or group version's resource list.
    Discovery,
    /// A GET of a collection (all namespaces or one).
    List,
    /// A GET of one named object.
    Get,
}

/// Classifies a request by the Kubernetes path layout
/// (`/apis/{group}/{version}[/namespaces/{ns}]/{plural}[/{name}]`).
pub fn classify(method: &str, path: &str) -> RequestKind {
    if matches!(method, "PATCH" | "PUT" | "POST" | "DELETE") {
        return RequestKind::Write;
    }
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    match segments.as_slice() {
        ["apis", _, _, _] | ["apis", _, _, "namespaces", _, _] => RequestKind::List,
        ["apis", _, _, "namespaces", _, _, _] => RequestKind::Get,
        // The core group and the group (version) lists, `/version`: all discovery.
        _ => RequestKind::Discovery,
    }
}

/// Requests by kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RequestCounts {
    pub writes: usize,
    pub discovery: usize,
    pub lists: usize,
    pub gets: usize,
}

impl RequestCounts {
    /// Counts `(method, path)` pairs.
    pub fn of<'a>(requests: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        let mut counts = Self::default();
        for (method, path) in requests {
            match classify(method, path) {
                RequestKind::Write => counts.writes += 1,
                RequestKind::Discovery => counts.discovery += 1,
                RequestKind::List => counts.lists += 1,
                RequestKind::Get => counts.gets += 1,
            }
        }
        counts
    }

    pub fn reads(&self) -> usize {
        self.discovery + self.lists + self.gets
    }

    pub fn total(&self) -> usize {
        self.writes + self.reads()
    }
}

/// `8 reads (2 discovery + 6 LIST + 0 GET)`
impl fmt::Display for RequestCounts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} reads ({} discovery + {} LIST + {} GET)",
            self.reads(),
            self.discovery,
            self.lists,
            self.gets
        )
    }
}
