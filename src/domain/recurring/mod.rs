//! Schedules: an execution created from a template at every instant of a cron
//! expression read in a time zone (`0 9 * * MON-FRI` in `Europe/Berlin`), with a
//! policy for an instant that comes while the last one's execution still runs.
//! This module defines a schedule and checks what a client asks for; when a
//! schedule fires, and what it does then, is `firing`. No I/O happens here.

mod firing;

pub use firing::{Fire, dropped, fire, fired};

use std::str::FromStr;

use async_graphql::{Enum, InputObject, InputType};
use chrono::Utc;
use chrono_tz::Tz;
use croner::Cron;
use serde_json::Value;

use crate::domain::inputs::CreateExecutionInput;
use crate::domain::records::{Execution, Timestamp, new_id};
use crate::domain::status::ExecutionStatus;
use crate::domain::validate;
use crate::error::{AppError, AppResult};

/// What a fire does while the execution of the schedule's last fire still runs.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum Overlap {
    /// Skip this fire (counted in `skipped`).
    Skip,
    /// Create the execution anyway.
    Allow,
    /// Hold one fire back until the running execution settles; more are skipped.
    BufferOne,
    /// Cancel the running execution, then create the new one.
    CancelPrevious,
}

impl Overlap {
    pub fn as_str(self) -> &'static str {
        match self {
            Overlap::Skip => "SKIP",
            Overlap::Allow => "ALLOW",
            Overlap::BufferOne => "BUFFER_ONE",
            Overlap::CancelPrevious => "CANCEL_PREVIOUS",
        }
    }

    pub fn parse(value: &str) -> Option<Overlap> {
        [
            Self::Skip,
            Self::Allow,
            Self::BufferOne,
            Self::CancelPrevious,
        ]
        .into_iter()
        .find(|o| o.as_str() == value)
    }
}

#[derive(InputObject, Clone, Debug)]
pub struct ScheduleInput {
    pub name: Option<String>,
    /// Five fields (minute, hour, day of month, month, day of week) or six
    /// (seconds first), e.g. `0 9 * * MON-FRI`.
    pub cron: String,
    /// The IANA time zone the expression is read in, e.g. `Europe/Berlin`.
    #[graphql(default_with = "Some(\"UTC\".to_owned())")]
    pub timezone: Option<String>,
    /// What each fire creates. The execution starts at the fire's instant
    /// (`startAt`); `idempotencyKey` and `startAt` are the schedule's to set.
    pub template: CreateExecutionInput,
    #[graphql(default_with = "Some(Overlap::Skip)")]
    pub overlap: Option<Overlap>,
    /// An instant missed by at most this long (no process was running) still
    /// fires, once however many were missed; older ones are skipped and counted.
    #[graphql(default_with = "Some(60_000)")]
    pub catch_up_window_ms: Option<i32>,
    #[graphql(default_with = "Some(false)")]
    pub paused: Option<bool>,
}

/// A schedule and where its firing stands.
#[derive(Clone, Debug, PartialEq)]
pub struct Schedule {
    pub id: String,
    /// The tenant its executions belong to.
    pub customer_id: Option<String>,
    pub name: Option<String>,
    pub cron: String,
    pub timezone: String,
    /// A `CreateExecutionInput`, as the API takes it.
    pub template: Value,
    pub overlap: Overlap,
    pub catch_up_window_ms: i64,
    pub paused: bool,
    /// The next instant due (none while paused).
    pub next_fire_at: Option<Timestamp>,
    /// An instant claimed whose execution is not created yet.
    pub pending_fire: Option<Timestamp>,
    /// An instant held back until the last execution settles (`BUFFER_ONE`).
    pub buffered_fire: Option<Timestamp>,
    pub last_fire_at: Option<Timestamp>,
    pub last_execution_id: Option<String>,
    /// Executions created.
    pub fires: i64,
    /// Instants that created nothing: missed beyond the catch-up window, or
    /// skipped by the overlap policy.
    pub skipped: i64,
    /// Fences concurrent writers: a write expects the version it read.
    pub version: i64,
    pub created_by: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// A cron expression read in a time zone: when a schedule fires.
pub struct Cadence {
    cron: Cron,
    zone: Tz,
}

impl Cadence {
    /// `cron` in `timezone`; errors name the fields of `input`.
    pub fn parse(cron: &str, timezone: &str) -> AppResult<Cadence> {
        let zone = Tz::from_str(timezone).map_err(|_| {
            AppError::bad_input("input.timezone", format!("unknown time zone `{timezone}`"))
        })?;
        let cron = Cron::from_str(cron)
            .map_err(|error| AppError::bad_input("input.cron", error.to_string()))?;
        let cadence = Cadence { cron, zone };
        if cadence.next_after(Utc::now()).is_none() {
            return Err(AppError::bad_input("input.cron", "never fires"));
        }
        Ok(cadence)
    }

    /// The cadence of a stored schedule.
    pub fn of(schedule: &Schedule) -> AppResult<Cadence> {
        Cadence::parse(&schedule.cron, &schedule.timezone)
    }

    /// The first instant after `at`.
    pub fn next_after(&self, at: Timestamp) -> Option<Timestamp> {
        let local = at.with_timezone(&self.zone);
        let next = self.cron.find_next_occurrence(&local, false).ok()?;
        Some(next.with_timezone(&Utc))
    }

    /// The next `count` instants after `at`.
    pub fn upcoming(&self, at: Timestamp, count: usize) -> Vec<Timestamp> {
        std::iter::successors(self.next_after(at), |t| self.next_after(*t))
            .take(count)
            .collect()
    }
}

/// `input`, checked, as the schedule `existing` becomes (or a new one of `owner`,
/// the tenant already authorised to create its executions), at `now`. `written`
/// is `input.template` as the client wrote it: kept as JSON, it reads back as
/// given (a JSON field of the parsed input would not). The template's steps are
/// checked by the caller, who knows the step kinds.
pub fn define(
    input: ScheduleInput,
    written: Value,
    owner: Option<String>,
    existing: Option<&Schedule>,
    actor: &str,
    now: Timestamp,
) -> AppResult<Schedule> {
    let timezone = input.timezone.unwrap_or_else(|| "UTC".to_owned());
    let cadence = Cadence::parse(&input.cron, &timezone)?;
    let template = &input.template;
    if template.idempotency_key.is_some() || template.start_at.is_some() {
        return Err(AppError::bad_input(
            "input.template",
            "idempotencyKey and startAt are set by each fire",
        ));
    }
    let catch_up_window_ms = i64::from(input.catch_up_window_ms.unwrap_or(60_000));
    if catch_up_window_ms < 0 {
        return Err(AppError::bad_input(
            "input.catchUpWindowMs",
            "must not be negative",
        ));
    }
    let mut template = written;
    if let Value::Object(fields) = &mut template {
        fields.insert(
            "customerId".into(),
            owner.clone().map_or(Value::Null, Value::from),
        );
    }
    let paused = input.paused.unwrap_or(false);
    let base = existing.cloned().unwrap_or_else(|| Schedule {
        id: new_id(),
        customer_id: owner,
        name: None,
        cron: String::new(),
        timezone: String::new(),
        template: Value::Null,
        overlap: Overlap::Skip,
        catch_up_window_ms: 0,
        paused: false,
        next_fire_at: None,
        pending_fire: None,
        buffered_fire: None,
        last_fire_at: None,
        last_execution_id: None,
        fires: 0,
        skipped: 0,
        version: 0,
        created_by: actor.to_owned(),
        created_at: now,
        updated_at: now,
    });
    Ok(Schedule {
        name: validate::opt_short("input.name", input.name)?,
        cron: input.cron.trim().to_owned(),
        timezone,
        template,
        overlap: input.overlap.unwrap_or(Overlap::Skip),
        catch_up_window_ms,
        paused,
        next_fire_at: (!paused).then(|| cadence.next_after(now)).flatten(),
        version: base.version + 1,
        updated_at: now,
        ..base
    })
}

/// The schedule paused (`paused`) or resumed at `now`: a resumed one fires next at
/// its first instant after `now`, not at those it was paused through.
pub fn set_paused(schedule: &Schedule, paused: bool, now: Timestamp) -> AppResult<Schedule> {
    let cadence = Cadence::of(schedule)?;
    Ok(Schedule {
        paused,
        next_fire_at: (!paused).then(|| cadence.next_after(now)).flatten(),
        version: schedule.version + 1,
        updated_at: now,
        ..schedule.clone()
    })
}

/// The input of the execution a fire at `at` creates: the template, starting at
/// `at`, under a key that no other fire of any schedule uses, so that a fire
/// retried (by another process, or after a crash) creates nothing twice.
pub fn template_at(schedule: &Schedule, at: Timestamp) -> AppResult<CreateExecutionInput> {
    let mut input = template_of(&schedule.template)?;
    input.idempotency_key = Some(format!(
        "schedule:{}:{}",
        schedule.id,
        at.timestamp_millis()
    ));
    input.start_at = Some(at);
    Ok(input)
}

/// A stored template as the `CreateExecutionInput` it was.
pub fn template_of(template: &Value) -> AppResult<CreateExecutionInput> {
    let value = async_graphql::Value::from_json(template.clone())
        .map_err(|error| AppError::Internal(format!("a stored template: {error}")))?;
    CreateExecutionInput::parse(Some(value)).map_err(|error| {
        let message = error.into_server_error(Default::default()).message;
        AppError::Internal(format!("a stored template: {message}"))
    })
}

/// Whether a schedule's last execution still runs, for its overlap policy: not
/// completed, cancelled, or failed for good.
pub fn still_runs(execution: &Execution) -> bool {
    match execution.status {
        ExecutionStatus::Completed | ExecutionStatus::Cancelled => false,
        ExecutionStatus::Failed => execution.retry_at.is_some(),
        _ => true,
    }
}
