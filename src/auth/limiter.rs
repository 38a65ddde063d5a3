//! Limits failed authentications per client address: a fixed window per address.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Addresses tracked at most; beyond, finished windows are dropped first.
const CAPACITY: usize = 100_000;

/// Counts failures per address within a window; past `limit`, the address is refused until
/// its window ends.
pub struct FailureLimiter {
    limit: u32,
    window: Duration,
    windows: Mutex<HashMap<IpAddr, (Instant, u32)>>,
}

impl FailureLimiter {
    pub fn new(limit: u32, window: Duration) -> Self {
        Self {
            limit,
            window,
            windows: Mutex::new(HashMap::new()),
        }
    }

    /// How long `peer` must wait, if it has used up its failures.
    pub fn blocked(&self, peer: IpAddr) -> Option<Duration> {
        let windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        let (start, count) = windows.get(&peer)?;
        let elapsed = start.elapsed();
        (elapsed < self.window && *count >= self.limit).then(|| self.window - elapsed)
    }

    pub fn record(&self, peer: IpAddr) {
        let mut windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        if windows.len() >= CAPACITY {
            let window = self.window;
            windows.retain(|_, (start, _)| start.elapsed() < window);
        }
        let entry = windows.entry(peer).or_insert((Instant::now(), 0));
        if entry.0.elapsed() >= self.window {
            *entry = (Instant::now(), 0);
        }
        entry.1 += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_is_blocked_after_its_failures_and_others_are_not() {
        let limiter = FailureLimiter::new(3, Duration::from_secs(60));
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        for _ in 0..2 {
            limiter.record(a);
        }
        assert!(limiter.blocked(a).is_none());
        limiter.record(a);
        let wait = limiter.blocked(a).expect("blocked after 3 failures");
        assert!(wait <= Duration::from_secs(60) && wait > Duration::from_secs(50));
        assert!(limiter.blocked(b).is_none());
    }

    #[test]
    fn the_window_ends() {
        let limiter = FailureLimiter::new(1, Duration::from_millis(30));
        let a: IpAddr = "::1".parse().unwrap();
        limiter.record(a);
        assert!(limiter.blocked(a).is_some());
        std::thread::sleep(Duration::from_millis(40));
        assert!(limiter.blocked(a).is_none());
    }
}
