//! When to stop working on a cluster: a circuit breaker that opens after a few consecutive
//! requests got no answer (the API server is down or cut off), and a halt signal (the worker is
//! shutting down). Either way the objects not yet started are left pending rather than failed
//! one by one, and requests in flight stop retrying.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::watch;

/// Consecutive requests without an answer after which a cluster counts as unreachable. Small,
/// because one refused connection per object in flight arrives at once when a server dies.
pub const OUTAGE_THRESHOLD: u32 = 3;

/// Why work on a cluster stopped before its plan was done.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Interruption {
    /// The API server stopped answering; the cause of the last failure.
    Outage(String),
    /// The worker is stopping; another one resumes the deployment.
    Halted,
}

/// A worker's stop signal, shared by every cluster it works on.
pub type Halt = watch::Receiver<bool>;

/// A halt signal that never fires (verify and other one-off reads).
pub fn never_halted() -> Halt {
    let (sender, receiver) = watch::channel(false);
    // Dropping the sender leaves the value at false for ever.
    drop(sender);
    receiver
}

/// The gate of one cluster's run.
pub struct Gate {
    halt: Halt,
    misses: AtomicU32,
    outage: watch::Sender<Option<String>>,
}

impl Gate {
    pub fn new(halt: Halt) -> Gate {
        Gate {
            halt,
            misses: AtomicU32::new(0),
            outage: watch::Sender::new(None),
        }
    }

    /// A gate that only a stream of unanswered requests closes.
    pub fn unhalted() -> Gate {
        Gate::new(never_halted())
    }

    /// Notes how a request went: an answer (any HTTP status) closes the count of misses, a
    /// request without one adds to it and may open the breaker.
    pub fn observe<T>(&self, result: &Result<T, kube::Error>) {
        match result {
            Err(error) if unanswered(error) => {
                let misses = self.misses.fetch_add(1, Ordering::SeqCst) + 1;
                if misses >= OUTAGE_THRESHOLD {
                    self.trip(error);
                }
            }
            _ => self.misses.store(0, Ordering::SeqCst),
        }
    }

    /// Opens the breaker: the cluster counts as unreachable, with `error` as the cause. Also
    /// for a request that ran out of retries without an answer: however the misses interleaved
    /// with answers, a server that one request cannot reach for that long is not there.
    pub fn trip(&self, error: &kube::Error) {
        let cause = super::retry::describe(error);
        self.outage.send_if_modified(|current| {
            let first = current.is_none();
            if first {
                tracing::warn!(cause = %cause, "cluster unreachable: pausing its objects");
                *current = Some(cause.clone());
            }
            first
        });
    }

    /// Why the run must stop, if it must.
    pub fn interruption(&self) -> Option<Interruption> {
        if *self.halt.borrow() {
            return Some(Interruption::Halted);
        }
        self.outage.borrow().clone().map(Interruption::Outage)
    }

    pub fn is_closed(&self) -> bool {
        self.interruption().is_some()
    }

    /// Resolves when the gate closes (for cutting a retry's wait short).
    pub async fn closed(&self) {
        let mut halt = self.halt.clone();
        let mut outage = self.outage.subscribe();
        // The guards `wait_for` returns are dropped at once (they are not Send).
        let halted = async move { halt.wait_for(|h| *h).await.is_ok() };
        let out = async move { outage.wait_for(Option::is_some).await.is_ok() };
        tokio::select! {
            // False means the sender is gone: it can never fire, so wait on the other.
            true = halted => {}
            true = out => {}
            else => std::future::pending::<()>().await,
        }
    }
}

/// Whether a request got no HTTP answer at all, for a reason that may pass (refused, reset,
/// timed out). Wrong certificates are permanent and are not an outage.
pub fn unanswered(error: &kube::Error) -> bool {
    super::cause::is_connection_failure(error) && super::cause::is_transient(error)
}

/// How long to wait for a cluster that stopped answering.
#[derive(Clone, Debug)]
pub struct OutagePolicy {
    /// The first wait between probes; doubles up to `max_probe_delay`.
    pub first_probe_delay: Duration,
    pub max_probe_delay: Duration,
    /// How long a deployment waits for a cluster before it fails its remaining objects.
    pub give_up_after: Duration,
}

impl Default for OutagePolicy {
    fn default() -> Self {
        Self {
            first_probe_delay: Duration::from_secs(1),
            max_probe_delay: Duration::from_secs(30),
            give_up_after: Duration::from_secs(15 * 60),
        }
    }
}

/// How waiting for a cluster ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Probed {
    Answering,
    GaveUp,
    Halted,
}

/// Probes the API server (`GET /version`) with exponential backoff until it answers, the
/// deadline passes or the worker halts.
pub async fn wait_for_answer(
    client: &kube::Client,
    policy: &OutagePolicy,
    deadline: Instant,
    halt: &Halt,
) -> Probed {
    let mut delay = policy.first_probe_delay;
    loop {
        let now = Instant::now();
        if now >= deadline {
            return Probed::GaveUp;
        }
        let wait = delay.min(deadline - now);
        let mut halt = halt.clone();
        let halted = async move { halt.wait_for(|h| *h).await.is_ok() };
        tokio::select! {
            true = halted => return Probed::Halted,
            _ = tokio::time::sleep(wait) => {}
        }
        match client.apiserver_version().await {
            Ok(_) => return Probed::Answering,
            // Any HTTP answer means the server is back; the run itself reports what it says.
            Err(kube::Error::Api(_)) => return Probed::Answering,
            Err(error) => {
                tracing::debug!(error = %super::retry::describe(&error), "cluster still unreachable")
            }
        }
        delay = (delay * 2).min(policy.max_probe_delay);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused() -> kube::Error {
        kube::Error::Service(Box::new(std::io::Error::new(
            std::io::ErrorKind::ConnectionRefused,
            "connection refused",
        )))
    }

    #[test]
    fn opens_after_consecutive_misses_and_an_answer_resets_the_count() {
        let gate = Gate::unhalted();
        gate.observe::<()>(&Err(refused()));
        gate.observe::<()>(&Err(refused()));
        gate.observe::<()>(&Ok(()));
        gate.observe::<()>(&Err(refused()));
        gate.observe::<()>(&Err(refused()));
        assert_eq!(gate.interruption(), None, "never three in a row");
        gate.observe::<()>(&Err(refused()));
        assert!(matches!(gate.interruption(), Some(Interruption::Outage(_))));
    }

    #[tokio::test]
    async fn a_halt_closes_the_gate_and_wakes_waiters() {
        let (stop, halt) = watch::channel(false);
        let gate = Gate::new(halt);
        assert!(!gate.is_closed());
        let waiter = async { gate.closed().await };
        let (_, ()) = tokio::join!(async { stop.send(true).unwrap() }, waiter);
        assert_eq!(gate.interruption(), Some(Interruption::Halted));
    }
}
