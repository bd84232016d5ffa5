//! Realistic execution histories for demos, benchmarks and tests (`exechub seed`):
//! varied services, tenants, priorities, assignees, tags, steps, logs, costs,
//! durations and errors, each history built with the lifecycle rules so that its
//! metrics, events and sequences are what the commands would have left.

use chrono::Duration;
use rand::Rng;
use rand::seq::IndexedRandom;
use serde_json::json;

use super::change::Change;
use super::inputs::{AssigneeInput, CreateExecutionInput, StepInput};
use super::lifecycle;
use super::records::*;
use super::status::{ExecutionStatus, StepStatus};
use super::step_graph::StepKinds;
use super::values::*;
use crate::error::AppResult;

pub const SERVICES: [&str; 8] = [
    "translate",
    "summarise",
    "classify",
    "transcribe",
    "code-review",
    "research",
    "support-reply",
    "data-cleanup",
];
pub const TAGS: [&str; 8] = [
    "production",
    "staging",
    "llm",
    "batch",
    "vip",
    "eu",
    "us",
    "beta",
];
const ERROR_CODES: [(&str, bool); 6] = [
    ("API_TIMEOUT", true),
    ("RATE_LIMITED", true),
    ("UPSTREAM_5XX", true),
    ("VALIDATION_ERROR", false),
    ("MODEL_REFUSAL", false),
    ("BUDGET_EXCEEDED", false),
];
const STEP_NAMES: [&str; 6] = [
    "Fetch input",
    "Plan",
    "Generate",
    "Review",
    "Deliver",
    "Notify",
];
const MODELS: [&str; 3] = ["gpt-4o", "claude-sonnet", "llama-3-70b"];
/// Tenants are `customer-0` … `customer-{CUSTOMERS - 1}`.
const CUSTOMERS: usize = 40;
const ACTOR: &str = "seed";

/// Picks by weight: `weighted(rng, &[(a, 3), (b, 1)])` is `a` three times in four.
fn weighted<T: Copy>(rng: &mut impl Rng, choices: &[(T, u32)]) -> T {
    let total: u32 = choices.iter().map(|(_, w)| w).sum();
    let mut roll = rng.random_range(0..total);
    for (choice, weight) in choices {
        if roll < *weight {
            return *choice;
        }
        roll -= weight;
    }
    choices[choices.len() - 1].0
}

/// Log-uniform milliseconds between `low` and `high`: many short runs, a long tail.
fn log_uniform(rng: &mut impl Rng, low: f64, high: f64) -> i64 {
    (low * (high / low).powf(rng.random::<f64>())).round() as i64
}

fn assignee(rng: &mut impl Rng) -> Option<AssigneeInput> {
    let kind = weighted(
        rng,
        &[
            (Some(AssigneeType::AiAgent), 60),
            (Some(AssigneeType::Human), 15),
            (Some(AssigneeType::Hybrid), 5),
            (Some(AssigneeType::System), 15),
            (None, 5),
        ],
    )?;
    let model = (kind == AssigneeType::AiAgent).then(|| MODELS.choose(rng).unwrap().to_string());
    Some(AssigneeInput {
        kind,
        id: Some(
            format!(
                "{}-{}",
                kind.as_str().to_lowercase(),
                rng.random_range(0..12)
            )
            .into(),
        ),
        name: None,
        model,
        version: None,
        capabilities: None,
    })
}

fn create_input(rng: &mut impl Rng, index: usize) -> CreateExecutionInput {
    let step_count = rng.random_range(2..=5);
    let steps = STEP_NAMES
        .iter()
        .take(step_count)
        .enumerate()
        .map(|(i, name)| StepInput {
            id: format!("s{i}").into(),
            name: name.to_string(),
            depends_on: None,
            handler: None,
            assignee: None,
            input: None,
            timeout_ms: None,
            metadata: None,
            concurrency_key: None,
        })
        .collect();
    let tags: Vec<String> = TAGS
        .iter()
        .filter(|_| rng.random_bool(0.2))
        .map(|t| t.to_string())
        .collect();
    CreateExecutionInput {
        idempotency_key: None,
        order_id: format!("order-{index}").into(),
        service_id: weighted(rng, &SERVICES.map(|s| (s, 1 + s.len() as u32 % 4))).into(),
        customer_id: None,
        provider_id: rng
            .random_bool(0.5)
            .then(|| format!("provider-{}", rng.random_range(0..5)).into()),
        priority: Some(weighted(
            rng,
            &[
                (Priority::Low, 20),
                (Priority::Normal, 55),
                (Priority::High, 18),
                (Priority::Urgent, 7),
            ],
        )),
        assignee: assignee(rng),
        steps: Some(steps),
        timeout_ms: None,
        retry_policy: None,
        webhooks: None,
        tags: Some(tags),
        environment: weighted(
            rng,
            &[(Some("production"), 70), (Some("staging"), 20), (None, 10)],
        )
        .map(String::from),
        version: Some(format!("1.{}", rng.random_range(0..4))),
        metadata: None,
        concurrency_key: None,
        budget: None,
        auto_start: Some(false),
        start_at: None,
    }
}

fn log_line(rng: &mut impl Rng, step: &Step, at: Timestamp) -> LogEntry {
    let (level, message) = weighted(
        rng,
        &[
            ((LogLevel::Info, "step finished its batch"), 6),
            ((LogLevel::Debug, "model call returned"), 3),
            ((LogLevel::Warn, "upstream slow, retrying call"), 2),
            ((LogLevel::Error, "call failed"), 1),
        ],
    );
    LogEntry {
        id: new_id(),
        timestamp: at,
        level,
        message: format!("{}: {message}", step.name),
        step: Some(step.id.clone()),
        context: None,
        metadata: None,
    }
}

/// One execution's history: most completed, some failed or cancelled (created at a
/// random time in the `days` before `now`), a few paused, running or still queued.
pub fn history(rng: &mut impl Rng, index: usize, now: Timestamp, days: i64) -> AppResult<Change> {
    let outcome = weighted(
        rng,
        &[
            (ExecutionStatus::Completed, 70),
            (ExecutionStatus::Failed, 12),
            (ExecutionStatus::Cancelled, 5),
            (ExecutionStatus::Running, 5),
            (ExecutionStatus::Paused, 2),
            (ExecutionStatus::Queued, 6),
        ],
    );
    // Unfinished ones are recent (5 to 9 minutes old, their steps at most a minute
    // each), so that none is due for a timeout or a periodic checkpoint when seeded.
    let active = matches!(
        outcome,
        ExecutionStatus::Queued | ExecutionStatus::Running | ExecutionStatus::Paused
    );
    let (created, longest_step) = if active {
        (
            now - Duration::milliseconds(rng.random_range(300_000..540_000)),
            60_000.0,
        )
    } else {
        let age = rng.random_range(0..days.max(1) * 86_400_000);
        (now - Duration::milliseconds(age), 600_000.0)
    };
    let customer = format!("customer-{}", rng.random_range(0..CUSTOMERS));
    let input = create_input(rng, index);
    let external_only = StepKinds::new([]);
    let mut change =
        lifecycle::create(input, Some(customer), &external_only, ACTOR, created, true)?;
    if outcome == ExecutionStatus::Queued {
        return Ok(change);
    }
    let mut at = created + Duration::milliseconds(log_uniform(rng, 50.0, 60_000.0));
    change.now = at;
    change.move_to(ExecutionStatus::Starting)?;
    change.move_to(ExecutionStatus::Running)?;
    change.emit(EventType::ExecutionStarted, EventPayload::default(), None);

    // Steps run in order; an unfinished history stops at a random step.
    let step_count = change.steps.len();
    let reached = match outcome {
        ExecutionStatus::Completed => step_count,
        _ => rng.random_range(0..step_count),
    };
    let (mut tokens, mut cost, mut calls) = (0i64, 0f64, 0i64);
    let planned = change.steps.clone();
    for (i, planned) in planned.iter().enumerate().take(reached + 1) {
        let mut step = planned.clone();
        step.started_at = Some(at);
        step.attempt = 1;
        if i == reached {
            // The step the history stops in.
            step.status = match outcome {
                ExecutionStatus::Failed => StepStatus::Failed,
                _ => StepStatus::Running,
            };
        } else {
            let took = log_uniform(rng, 200.0, longest_step);
            at += Duration::milliseconds(took);
            step.status = StepStatus::Completed;
            step.completed_at = Some(at);
            step.duration_ms = Some(took);
            let step_tokens = rng.random_range(100..8_000);
            tokens += step_tokens;
            cost += step_tokens as f64 * 0.000_01 * rng.random_range(0.5..3.0);
            calls += rng.random_range(1..6);
            change.now = at;
            if rng.random_bool(0.3) {
                let log = log_line(rng, &step, at);
                change.log(log);
            }
        }
        change.put_step(step);
    }
    change.steps.sort_by_key(|s| s.index);
    let done = change
        .steps
        .iter()
        .filter(|s| s.status == StepStatus::Completed)
        .count();
    let metrics = &mut change.execution.metrics;
    metrics.steps_total = step_count as i32;
    metrics.steps_completed = done as i32;
    if tokens > 0 {
        metrics.tokens_used = Some(tokens);
        metrics.cost = Some((cost * 1e6).round() / 1e6);
        metrics.api_calls = Some(calls);
    }
    change.execution.progress = (done as f64 * 100.0 / step_count as f64).round();
    at += Duration::milliseconds(log_uniform(rng, 10.0, 5_000.0));
    change.now = at;
    match outcome {
        ExecutionStatus::Completed => {
            let summary = format!("{} done for order {index}", change.execution.service_id);
            let result = ExecutionResult {
                success: true,
                output: None,
                summary,
                artifacts: Vec::new(),
                metadata: None,
            };
            lifecycle::complete_into(&mut change, result)?
        }
        ExecutionStatus::Failed => {
            let (code, recoverable) = *ERROR_CODES.choose(rng).unwrap();
            let step = change.steps.iter().find(|s| s.status == StepStatus::Failed);
            let error = ExecutionError {
                code: code.to_owned(),
                message: format!("{} failed: {}", step.map_or("run", |s| &s.name), code),
                stack: None,
                step: step.map(|s| s.id.clone().into()),
                recoverable,
                retry_count: 0,
                context: Some(json!({ "attempt": 1 }).into()),
                timestamp: Some(at),
            };
            lifecycle::fail_into(&mut change, error, None)?;
        }
        ExecutionStatus::Cancelled => {
            change.move_to(ExecutionStatus::Cancelled)?;
            change.emit(EventType::ExecutionCancelled, EventPayload::default(), None);
        }
        ExecutionStatus::Paused => {
            change.move_to(ExecutionStatus::Paused)?;
            change.emit(EventType::ExecutionPaused, EventPayload::default(), None);
        }
        _ => {}
    }
    change.execution.updated_at = at;
    Ok(change)
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::*;

    #[test]
    fn histories_are_consistent_and_varied() {
        let mut rng = StdRng::seed_from_u64(7);
        let now = chrono::Utc::now();
        let histories: Vec<Change> = (0..500)
            .map(|i| history(&mut rng, i, now, 30).unwrap())
            .collect();
        let statuses: std::collections::BTreeSet<_> = histories
            .iter()
            .map(|c| c.execution.status.as_str())
            .collect();
        assert!(statuses.len() >= 5, "{statuses:?}");
        // Finished ones spread over the days, unfinished ones are minutes old.
        let old = |c: &Change| c.execution.created_at < now - Duration::hours(1);
        for status in [ExecutionStatus::Completed, ExecutionStatus::Failed] {
            let of_status: Vec<&Change> = histories
                .iter()
                .filter(|c| c.execution.status == status)
                .collect();
            let old_ones = of_status.iter().filter(|c| old(c)).count();
            assert!(old_ones > of_status.len() * 9 / 10, "{status:?}");
        }
        for status in [
            ExecutionStatus::Queued,
            ExecutionStatus::Running,
            ExecutionStatus::Paused,
        ] {
            assert!(
                !histories
                    .iter()
                    .any(|c| c.execution.status == status && old(c))
            );
        }
        for change in &histories {
            let e = &change.execution;
            assert_eq!(e.last_sequence, change.events.len() as i64);
            assert!(e.created_at <= e.updated_at && e.updated_at <= now + Duration::days(1));
            if e.status.is_terminal() && e.metrics.started_at.is_some() {
                assert!(e.metrics.duration_ms.unwrap() >= 0);
            }
            assert_eq!(e.error.is_some(), e.status == ExecutionStatus::Failed);
            // Steps ran one after the other; a completed history completed them all.
            let mut steps = change.steps.clone();
            steps.sort_by_key(|s| s.index);
            for pair in steps.windows(2) {
                if let (Some(done), Some(next)) = (pair[0].completed_at, pair[1].started_at) {
                    assert!(done <= next, "{:?}", steps);
                }
                if pair[1].started_at.is_some() {
                    assert_eq!(pair[0].status, StepStatus::Completed, "{steps:?}");
                }
            }
            if e.status == ExecutionStatus::Completed {
                assert!(steps.iter().all(|s| s.status == StepStatus::Completed));
                assert_eq!(e.metrics.steps_completed, e.metrics.steps_total);
            }
        }
    }
}
