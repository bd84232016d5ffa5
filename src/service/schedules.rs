//! Clients' commands on schedules (create, update, pause, resume, delete, read)
//! and the scheduler's firing of one. A schedule is not an execution: it is saved
//! with its audit row, fenced by its version. What a fire creates is an execution,
//! through the same door as every other create (`create_execution`).

use super::Service;
use crate::auth::{Permission, Principal, Role};
use crate::clock;
use crate::domain::lifecycle;
use crate::domain::records::Timestamp;
use crate::domain::recurring::{self, Cadence, Schedule, ScheduleInput};
use crate::error::{AppError, AppResult};
use crate::store::ScheduleAudit;
use serde_json::Value;

/// Schedules one read returns at most.
pub const SCHEDULES_PAGE: u64 = 500;

/// How many times a client's change is made anew when the schedule changed
/// between its read and its write.
const CHANGE_ATTEMPTS: usize = 5;

impl Service {
    /// A new schedule of executions of the tenant `by` may create for; `written`
    /// is its template as the client wrote it (`recurring::define`).
    pub async fn create_schedule(
        &self,
        by: &Principal,
        input: ScheduleInput,
        written: Value,
    ) -> AppResult<Schedule> {
        by.require(Permission::Create)?;
        let template = &input.template;
        let customer = template.customer_id.clone().map(|c| c.0);
        let owner =
            by.owner_for_new(customer, template.provider_id.as_ref().map(|p| p.as_str()))?;
        let now = clock::now();
        self.check_template(&input, &owner, now)?;
        let schedule = recurring::define(input, written, owner, None, &by.subject, now)?;
        let audit = ScheduleAudit {
            by,
            action: "createSchedule",
        };
        self.0
            .store
            .save_schedule(&schedule, None, Some(audit))
            .await?;
        Ok(schedule)
    }

    /// The schedule `id` defined anew by `input`; its counts and last fire stay.
    pub async fn update_schedule(
        &self,
        by: &Principal,
        id: &str,
        input: ScheduleInput,
        written: Value,
    ) -> AppResult<Schedule> {
        by.require(Permission::Manage)?;
        self.change_schedule(by, "updateSchedule", id, |existing, now| {
            let owner = existing.customer_id.clone();
            self.check_template(&input, &owner, now)?;
            let (input, written) = (input.clone(), written.clone());
            recurring::define(input, written, owner, Some(existing), &by.subject, now)
        })
        .await
    }

    /// Pauses (`paused`) or resumes the schedule `id`.
    pub async fn pause_schedule(
        &self,
        by: &Principal,
        id: &str,
        paused: bool,
    ) -> AppResult<Schedule> {
        by.require(Permission::Manage)?;
        let action = if paused {
            "pauseSchedule"
        } else {
            "resumeSchedule"
        };
        self.change_schedule(by, action, id, |existing, now| {
            recurring::set_paused(existing, paused, now)
        })
        .await
    }

    /// Deletes the schedule `id`; its executions stay. False when there was none.
    pub async fn delete_schedule(&self, by: &Principal, id: &str) -> AppResult<bool> {
        by.require(Permission::Manage)?;
        let audit = ScheduleAudit {
            by,
            action: "deleteSchedule",
        };
        self.0.store.delete_schedule(audit, id, clock::now()).await
    }

    pub async fn schedule(&self, by: &Principal, id: &str) -> AppResult<Option<Schedule>> {
        by.require(Permission::Read)?;
        self.0.store.schedule(by, id).await
    }

    pub async fn schedules(&self, by: &Principal, first: u64) -> AppResult<Vec<Schedule>> {
        by.require(Permission::Read)?;
        self.0.store.schedules(by, first.min(SCHEDULES_PAGE)).await
    }

    /// Fires the schedule `id` if it has something to do now, as the scheduler:
    /// claims the instant due, cancels the last execution if its policy says so,
    /// creates the execution and settles the claim (`domain::recurring::firing`).
    /// False when there was nothing to do, or another process did it.
    pub async fn fire_schedule(&self, id: &str) -> AppResult<bool> {
        let store = &self.0.store;
        let scheduler = Principal::scheduler();
        let Some(mut schedule) = store.schedule(&scheduler, id).await? else {
            return Ok(false);
        };
        if schedule.pending_fire.is_none() {
            let cadence = Cadence::of(&schedule)?;
            let last = match &schedule.last_execution_id {
                Some(last) => store.execution(&scheduler, last).await?,
                None => None,
            };
            let still_runs = last.as_ref().is_some_and(recurring::still_runs);
            let Some(fire) = recurring::fire(&schedule, &cadence, still_runs, clock::now()) else {
                return Ok(false);
            };
            if !store
                .save_schedule(&fire.schedule, Some(schedule.version), None)
                .await?
            {
                return Ok(false);
            }
            if let Some(previous) = fire.cancel {
                let reason = Some("its schedule fired again (CANCEL_PREVIOUS)".to_owned());
                match self.cancel_execution(&scheduler, &previous, reason).await {
                    Ok(_) | Err(AppError::InvalidTransition { .. }) => {}
                    Err(error) => return Err(error),
                }
            }
            schedule = fire.schedule;
        }
        let Some(at) = schedule.pending_fire else {
            return Ok(true);
        };
        let created = self.create_fired(&schedule, at).await;
        let settled = match &created {
            Ok(execution_id) => recurring::fired(&schedule, at, execution_id, clock::now()),
            Err(AppError::BadInput { field, message }) => {
                tracing::warn!(schedule = %schedule.id, %field, %message, "a fire's template is refused; the fire is skipped");
                recurring::dropped(&schedule, clock::now())
            }
            Err(error) => return Err(error.clone()),
        };
        store
            .save_schedule(&settled, Some(schedule.version), None)
            .await?;
        Ok(true)
    }

    /// The execution of `schedule`'s fire at `at`, created (or found: created
    /// before under the fire's key) as the schedule.
    async fn create_fired(&self, schedule: &Schedule, at: Timestamp) -> AppResult<String> {
        let input = recurring::template_at(schedule, at)?;
        let by = Principal {
            subject: format!("schedule:{}", schedule.id),
            role: Role::Admin,
            tenant: None,
        };
        let created = self.create_execution_of(&by, input, Some(schedule.id.clone()));
        Ok(created.await?.id)
    }

    /// Applies a client's `change` to the schedule `id` (`NOT_FOUND` when `by` may
    /// not see it) and saves it with its audit row. A schedule that fired between
    /// the read and the write is read again and the change made anew.
    async fn change_schedule(
        &self,
        by: &Principal,
        action: &'static str,
        id: &str,
        change: impl Fn(&Schedule, Timestamp) -> AppResult<Schedule>,
    ) -> AppResult<Schedule> {
        let store = &self.0.store;
        for _ in 0..CHANGE_ATTEMPTS {
            let existing = (store.schedule(by, id).await?)
                .ok_or_else(|| AppError::not_found(format!("schedule `{id}`")))?;
            let schedule = change(&existing, clock::now())?;
            let audit = ScheduleAudit { by, action };
            if store
                .save_schedule(&schedule, Some(existing.version), Some(audit))
                .await?
            {
                return Ok(schedule);
            }
        }
        Err(AppError::Conflict(
            "the schedule kept changing (it fires, or other clients change it): try again".into(),
        ))
    }

    /// Refuses a template that would not make an execution, naming its field
    /// under `input.template`.
    fn check_template(
        &self,
        input: &ScheduleInput,
        owner: &Option<String>,
        now: Timestamp,
    ) -> AppResult<()> {
        let kinds = &self.policy().step_kinds;
        let template = input.template.clone();
        match lifecycle::create(template, owner.clone(), kinds, "schedule", now, false) {
            Ok(_) => Ok(()),
            Err(AppError::BadInput { field, message }) => Err(AppError::bad_input(
                field.replacen("input.", "input.template.", 1),
                message,
            )),
            Err(error) => Err(error),
        }
    }
}
