//! External work: which offered steps a claimer may take, in which order, the
//! claim token that proves a claim (execution, step, attempt and the claim's nonce,
//! so a token from an earlier attempt or another claimer is refused), and what a
//! heartbeat does.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

use super::aging::aged_level;
use super::change::Change;
use super::inputs::ClaimStepInput;
use super::lifecycle;
use super::records::{Execution, Step, Timestamp, new_id};
use super::schedule::{self, Fence};
use super::values::AssigneeType;
use crate::error::{AppError, AppResult};

/// Leases a claimer may ask for: one second to one day.
const LEASE_MS: (i32, i32) = (1_000, 86_400_000);

/// What a claimer asks for, checked.
pub struct ClaimFilter {
    pub assignee_type: Option<AssigneeType>,
    pub assignee_id: Option<String>,
    pub capabilities: Vec<String>,
    pub handler_kinds: Vec<String>,
    pub lease: Duration,
}

impl ClaimStepInput {
    pub fn parse(self) -> AppResult<ClaimFilter> {
        let lease = lease("input.leaseMs", self.lease_ms.unwrap_or(60_000))?;
        let handler_kinds = self
            .handler_kinds
            .unwrap_or_else(|| vec!["external".into()]);
        if handler_kinds.is_empty() || handler_kinds.len() > 20 {
            return Err(AppError::bad_input(
                "input.handlerKinds",
                "name 1 to 20 kinds",
            ));
        }
        Ok(ClaimFilter {
            assignee_type: self.assignee_type,
            assignee_id: self.assignee_id.map(|id| id.0),
            capabilities: self.capabilities.unwrap_or_default(),
            handler_kinds,
            lease,
        })
    }
}

/// A lease a claimer asked for, checked.
pub fn lease(field: &str, ms: i32) -> AppResult<Duration> {
    if !(LEASE_MS.0..=LEASE_MS.1).contains(&ms) {
        return Err(AppError::bad_input(
            field,
            format!("must be between {} and {}", LEASE_MS.0, LEASE_MS.1),
        ));
    }
    Ok(Duration::from_millis(ms as u64))
}

impl ClaimFilter {
    /// Whether the claimer fits the step's assignee (or, without one, the
    /// execution's): same type and id when the claimer names them, and every
    /// capability the assignee lists.
    pub fn fits(&self, execution: &Execution, step: &Step) -> bool {
        if !self.handler_kinds.contains(&step.handler.kind) {
            return false;
        }
        let Some(wanted) = step.assignee.as_ref().or(execution.assignee.as_ref()) else {
            return true;
        };
        self.assignee_type.is_none_or(|t| t == wanted.kind)
            && self
                .assignee_id
                .as_ref()
                .is_none_or(|id| wanted.id.as_ref().is_none_or(|w| w.as_str() == id))
            && wanted
                .capabilities
                .iter()
                .all(|c| self.capabilities.contains(c))
    }
}

/// A handed-out step with its execution, as a claimer may take it.
pub struct Offer {
    pub execution: Execution,
    pub step: Step,
}

/// Orders `offers` as a claimer tries them: the highest level first once waiting
/// has raised it (`aging`), then the longest waiting.
pub fn rank(offers: &mut [Offer], now: Timestamp, aging: Duration) {
    offers.sort_by_key(|offer| {
        let ready_at = offer.step.schedule.ready_at.unwrap_or(now);
        let level = aged_level(offer.execution.priority, ready_at, now, aging);
        std::cmp::Reverse((level, std::cmp::Reverse(ready_at)))
    });
}

/// The token of a claim of `offer` under `lease`: the step's next attempt, owned by
/// a nonce of the claim's own.
pub fn token_for(offer: &Offer, lease: Duration) -> ClaimToken {
    ClaimToken {
        execution_id: offer.execution.id.clone(),
        step_id: offer.step.id.clone(),
        attempt: offer.step.attempt + 1,
        nonce: new_id(),
        lease_ms: Some(lease.as_millis() as i32),
    }
}

/// A heartbeat of the claim `token` proves: its lease runs until `until` and, with
/// `progress`, the execution's progress is reported. `CONFLICT` when the claim is
/// no longer current.
pub fn heartbeat(
    execution: &Execution,
    steps: &[Step],
    token: &ClaimToken,
    progress: Option<f64>,
    until: Timestamp,
    claimer: &str,
    now: Timestamp,
) -> AppResult<Change> {
    let mut change = match progress {
        Some(value) => lifecycle::update_progress(execution, value, claimer, now)?,
        None => Change::new(execution, claimer, now),
    };
    let mut step = schedule::check_fence(steps, &token.fence(), now)?.clone();
    step.schedule.lease_expires_at = Some(until);
    change.put_step(step);
    Ok(change)
}

/// The token handed to a claimer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClaimToken {
    pub execution_id: String,
    pub step_id: String,
    pub attempt: i32,
    pub nonce: String,
    /// The lease the claim asked for, in ms: what a heartbeat extends by unless it
    /// names its own. (Absent from tokens issued before it was carried.)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_ms: Option<i32>,
}

impl ClaimToken {
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(self).expect("a token serializes"))
    }

    pub fn parse(token: &str) -> AppResult<Self> {
        URL_SAFE_NO_PAD
            .decode(token)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .ok_or_else(|| AppError::bad_input("token", "not a claim token"))
    }

    /// What a heartbeat extends the lease by: `lease_ms` when it names one, else
    /// the claim's own lease, else `default`.
    pub fn heartbeat_lease(&self, lease_ms: Option<i32>, default: Duration) -> AppResult<Duration> {
        match (lease_ms, self.lease_ms) {
            (Some(ms), _) => lease("leaseMs", ms),
            (None, Some(ms)) => lease("token", ms),
            (None, None) => Ok(default),
        }
    }

    pub fn fence(&self) -> Fence {
        Fence {
            step_id: self.step_id.clone(),
            attempt: self.attempt,
            owner: self.nonce.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::values::Priority;
    use chrono::{TimeDelta, Utc};

    #[test]
    fn tokens_round_trip_and_garbage_is_bad_input() {
        let token = ClaimToken {
            execution_id: "e".into(),
            step_id: "s".into(),
            attempt: 3,
            nonce: "n".into(),
            lease_ms: Some(60_000),
        };
        assert_eq!(ClaimToken::parse(&token.encode()).unwrap(), token);
        assert!(matches!(
            ClaimToken::parse("%%"),
            Err(AppError::BadInput { .. })
        ));
    }

    #[test]
    fn a_heartbeat_extends_by_the_lease_the_claim_asked_for() {
        let mut token = ClaimToken {
            execution_id: "e".into(),
            step_id: "s".into(),
            attempt: 1,
            nonce: "n".into(),
            lease_ms: Some(60_000),
        };
        let default = Duration::from_secs(30);
        let lease = |token: &ClaimToken, ms| token.heartbeat_lease(ms, default).unwrap();
        assert_eq!(lease(&token, None), Duration::from_secs(60));
        assert_eq!(lease(&token, Some(5_000)), Duration::from_secs(5));
        token.lease_ms = None;
        assert_eq!(lease(&token, None), default);
        assert!(token.heartbeat_lease(Some(10), default).is_err());
    }

    #[test]
    fn offers_are_tried_by_aged_level_then_by_waiting() {
        let now = Utc::now();
        let aging = Duration::from_secs(30);
        let offer = |id: &str, priority, waited: i64| {
            let input = serde_json::json!({ "orderId": "o", "serviceId": "s", "steps": [
                { "id": id, "name": id, "handler": { "kind": "external" } },
            ] });
            let value = async_graphql::Value::from_json(input).unwrap();
            let input =
                <crate::domain::inputs::CreateExecutionInput as async_graphql::InputType>::parse(
                    Some(value),
                )
                .unwrap();
            let kinds = crate::domain::step_graph::StepKinds::new([]);
            let created = lifecycle::create(input, None, &kinds, "t", now, true).unwrap();
            let (mut execution, mut step) = (created.execution, created.steps[0].clone());
            step.schedule.ready_at = Some(now - TimeDelta::seconds(waited));
            execution.priority = priority;
            Offer { execution, step }
        };
        let cases = [
            // (offers as read, the order a claimer tries them)
            (
                vec![("low", Priority::Low, 0), ("high", Priority::High, 0)],
                "high low",
            ),
            (
                vec![("new", Priority::Normal, 1), ("old", Priority::Normal, 9)],
                "old new",
            ),
            // LOW waiting 61 s counts as HIGH, and has waited longer than HIGH.
            (
                vec![("high", Priority::High, 0), ("aged", Priority::Low, 61)],
                "aged high",
            ),
            (
                vec![("urgent", Priority::Urgent, 0), ("aged", Priority::Low, 61)],
                "urgent aged",
            ),
        ];
        for (offers, expected) in cases {
            let mut offers: Vec<Offer> =
                offers.into_iter().map(|(i, p, w)| offer(i, p, w)).collect();
            rank(&mut offers, now, aging);
            let order: Vec<&str> = offers.iter().map(|o| o.step.id.as_str()).collect();
            assert_eq!(order.join(" "), expected);
        }
    }
}
