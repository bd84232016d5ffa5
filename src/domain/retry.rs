//! The retry policy as ARCHITECTURE.md states it: whether a failed step is retried,
//! and after how long. Pure arithmetic, so every backoff is unit-tested here and the
//! scheduler only turns the answer into a delayed job.

use std::time::Duration;

use super::values::{BackoffStrategy, ExecutionError, RetryPolicy};

/// Whether a step that failed with `error`, after `retries` earlier retries, runs
/// again under `policy`.
pub fn should_retry(policy: Option<&RetryPolicy>, error: &ExecutionError, retries: i32) -> bool {
    let Some(policy) = policy else { return false };
    error.recoverable
        && retries < policy.max_retries
        && policy
            .retryable_errors
            .as_ref()
            .is_none_or(|codes| codes.iter().any(|c| c == &error.code))
}

/// The wait before retry `n` (1 for the first retry). `random` in [0, 1) picks the
/// jitter: with jitter on, the delay is scaled by `0.5 + random × 0.5`.
pub fn delay(policy: &RetryPolicy, n: i32, random: f64) -> Duration {
    let n = n.max(1) as u32;
    let initial = policy.initial_delay_ms.max(0) as f64;
    let factor = match policy.backoff {
        BackoffStrategy::Linear => n as f64,
        BackoffStrategy::Exponential => 2f64.powi(n as i32 - 1),
        BackoffStrategy::Fibonacci => fibonacci(n) as f64,
    };
    let capped = (initial * factor).min(policy.max_delay_ms.max(0) as f64);
    let ms = if policy.jitter {
        capped * (0.5 + random.clamp(0.0, 1.0) * 0.5)
    } else {
        capped
    };
    Duration::from_millis(ms.round() as u64)
}

/// 1, 1, 2, 3, 5 … for n = 1, 2, 3 …, saturating rather than overflowing.
fn fibonacci(n: u32) -> u64 {
    let (mut a, mut b) = (1u64, 1u64);
    for _ in 1..n {
        (a, b) = (b, a.saturating_add(b));
    }
    a
}

/// The WARN line written when retry `number` of `max_retries` is scheduled, e.g.
/// "Retrying after 2s (attempt 1/3)".
pub fn retry_message(wait: Duration, number: i32, max_retries: i32) -> String {
    // Whole milliseconds: the jitter's fractions are noise to a reader.
    let shown = Duration::from_millis(wait.as_millis() as u64);
    format!(
        "Retrying after {} (attempt {number}/{max_retries})",
        humantime::format_duration(shown),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(backoff: BackoffStrategy, jitter: bool) -> RetryPolicy {
        RetryPolicy {
            max_retries: 5,
            backoff,
            initial_delay_ms: 100,
            max_delay_ms: 1_000,
            jitter,
            retryable_errors: None,
        }
    }

    fn delays(policy: &RetryPolicy) -> Vec<u128> {
        (1..=6).map(|n| delay(policy, n, 0.0).as_millis()).collect()
    }

    #[test]
    fn each_backoff_grows_as_documented_and_is_capped() {
        let linear = policy(BackoffStrategy::Linear, false);
        assert_eq!(delays(&linear), [100, 200, 300, 400, 500, 600]);
        let exponential = policy(BackoffStrategy::Exponential, false);
        assert_eq!(delays(&exponential), [100, 200, 400, 800, 1000, 1000]);
        let fibonacci = policy(BackoffStrategy::Fibonacci, false);
        assert_eq!(delays(&fibonacci), [100, 100, 200, 300, 500, 800]);
    }

    #[test]
    fn jitter_keeps_the_delay_between_half_and_all_of_it() {
        let jittered = policy(BackoffStrategy::Linear, true);
        assert_eq!(delay(&jittered, 2, 0.0).as_millis(), 100);
        assert_eq!(delay(&jittered, 2, 0.5).as_millis(), 150);
        assert_eq!(delay(&jittered, 2, 0.999_999).as_millis(), 200);
    }

    #[test]
    fn only_recoverable_listed_codes_with_retries_left_are_retried() {
        let mut policy = policy(BackoffStrategy::Linear, false);
        policy.max_retries = 2;
        policy.retryable_errors = Some(vec!["API_ERROR".into()]);
        let mut error = ExecutionError {
            code: "API_ERROR".into(),
            ..crate::domain::schedule::system_error("boom")
        };
        assert!(should_retry(Some(&policy), &error, 0));
        assert!(should_retry(Some(&policy), &error, 1));
        assert!(!should_retry(Some(&policy), &error, 2), "no retries left");
        assert!(!should_retry(None, &error, 0), "no policy, no retry");
        error.code = "VALIDATION_ERROR".into();
        assert!(!should_retry(Some(&policy), &error, 0), "code not listed");
        error.code = "API_ERROR".into();
        error.recoverable = false;
        assert!(!should_retry(Some(&policy), &error, 0), "not recoverable");
    }

    #[test]
    fn the_retry_line_names_the_wait_and_the_attempt() {
        assert_eq!(
            retry_message(Duration::from_secs(1), 1, 3),
            "Retrying after 1s (attempt 1/3)"
        );
        assert_eq!(
            retry_message(Duration::from_millis(1500), 2, 3),
            "Retrying after 1s 500ms (attempt 2/3)"
        );
    }
}
