//! Retrying transient failures (connection refused, timeouts, 429, 5xx) with exponential
//! backoff and full jitter; anything else is reported at once.

use std::future::Future;
use std::time::Duration;

use super::cause::reached_server;
use super::gate::Gate;

/// How persistent to be with a cluster.
#[derive(Clone, Debug)]
pub struct RetryPolicy {
    /// Attempts per request, the first included.
    pub attempts: u32,
    /// Delay ceiling before the second attempt; doubles each time, up to `max_delay`.
    pub base_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts: 6,
            base_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(10),
        }
    }
}

impl RetryPolicy {
    /// The wait before attempt `n + 1` (n >= 1): a random duration up to base * 2^(n-1), capped.
    fn delay(&self, attempt: u32) -> Duration {
        let ceiling = self
            .base_delay
            .saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1)))
            .min(self.max_delay);
        ceiling.mul_f64(rand::random::<f64>())
    }
}

/// Whether an error is worth trying again.
pub fn is_transient(error: &kube::Error) -> bool {
    super::cause::is_transient(error)
}

/// A one-line description of a failure, with the API server's message when there is one.
pub fn describe(error: &kube::Error) -> String {
    super::cause::describe(error)
}

/// Runs `call` until it succeeds, fails permanently, runs out of attempts or the gate closes
/// (the cluster stopped answering, or the worker is stopping). Returns the result and the
/// number of attempts that reached the API server (a refused connection is not a request the
/// server saw).
pub async fn with_retries<T, F, Fut>(
    policy: &RetryPolicy,
    gate: &Gate,
    mut call: F,
) -> (Result<T, kube::Error>, u32)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, kube::Error>>,
{
    let mut attempt = 1;
    let mut sent = 0;
    loop {
        let result = call().await;
        gate.observe(&result);
        if result.as_ref().err().is_none_or(reached_server) {
            sent += 1;
        }
        match result {
            Ok(value) => return (Ok(value), sent),
            Err(error)
                if is_transient(&error) && attempt < policy.attempts && !gate.is_closed() =>
            {
                tracing::debug!(attempt, error = %describe(&error), "transient failure, retrying");
                tokio::select! {
                    _ = tokio::time::sleep(policy.delay(attempt)) => {}
                    _ = gate.closed() => return (Err(error), sent),
                }
                attempt += 1;
            }
            Err(error) => return (Err(error), sent),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_and_are_capped() {
        let p = RetryPolicy {
            attempts: 10,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(1),
        };
        for attempt in 1..10 {
            let ceiling =
                Duration::from_millis(100 * 2u64.pow(attempt - 1)).min(Duration::from_secs(1));
            assert!(p.delay(attempt) <= ceiling);
        }
    }

    fn api(code: u16) -> kube::Error {
        kube::Error::Api(Box::new(kube::core::Status {
            code,
            ..Default::default()
        }))
    }

    #[test]
    fn classification() {
        assert!(is_transient(&api(429)));
        assert!(is_transient(&api(503)));
        assert!(!is_transient(&api(422)));
        assert!(!is_transient(&api(409)));
        assert!(!is_transient(&api(404)));
    }

    #[tokio::test]
    async fn retries_transient_errors_only() {
        let policy = RetryPolicy {
            attempts: 4,
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(2),
        };
        let mut calls = 0;
        let gate = Gate::unhalted();
        let (result, attempts) = with_retries(&policy, &gate, || {
            calls += 1;
            let fail = calls < 3;
            async move { if fail { Err(api(503)) } else { Ok(calls) } }
        })
        .await;
        assert_eq!((result.unwrap(), attempts), (3, 3));
        let (result, attempts) =
            with_retries(&policy, &gate, || async { Err::<(), _>(api(422)) }).await;
        assert!(result.is_err());
        assert_eq!(attempts, 1);
        let (result, attempts) =
            with_retries(&policy, &gate, || async { Err::<(), _>(api(500)) }).await;
        assert!(result.is_err());
        assert_eq!(attempts, 4);
    }
}
