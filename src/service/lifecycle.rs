//! Clients' commands on a whole execution: create, update, the lifecycle moves, and
//! what agents report about it (progress, metrics, logs, checkpoints).

use super::Service;
use crate::auth::{Permission, Principal};
use crate::clock;
use crate::domain::change::Change;
use crate::domain::inputs::*;
use crate::domain::records::{Checkpoint, Execution, LogEntry, Timestamp};
use crate::domain::schedule::SCHEDULER;
use crate::domain::snapshot::Snapshot;
use crate::domain::status::ExecutionStatus;
use crate::domain::{failure, lifecycle, limits, schedule};
use crate::error::{AppError, AppResult};

impl Service {
    /// A new execution, owned by the tenant `by` may create for; with an idempotency
    /// key already used, the execution created first under it.
    pub async fn create_execution(
        &self,
        by: &Principal,
        input: CreateExecutionInput,
    ) -> AppResult<Execution> {
        self.create_execution_of(by, input, None).await
    }

    /// `create_execution`, for the schedule `schedule_id` when one fires.
    pub(super) async fn create_execution_of(
        &self,
        by: &Principal,
        input: CreateExecutionInput,
        schedule_id: Option<String>,
    ) -> AppResult<Execution> {
        by.require(Permission::Create)?;
        // While a limit on executions or a share is set, an auto-started execution
        // is created QUEUED and then started as `startExecution` starts one: when
        // its keys have room (or else waiting), its steps handed out under their
        // shares.
        let now = clock::now();
        let limits = self.0.store.limits();
        let limited = (limits.iter()).any(|l| l.executions.is_some() || l.share.is_some());
        let start_under_limits = limited && lifecycle::starts_at_once(&input, now);
        let customer = input.customer_id.clone().map(|c| c.0);
        let provider = input.provider_id.as_ref().map(|p| p.as_str());
        let customer = by.owner_for_new(customer, provider)?;
        let kinds = &self.policy().step_kinds;
        let subject = &by.subject;
        let mut change =
            lifecycle::create(input, customer, kinds, subject, now, !start_under_limits)?;
        change.execution.schedule_id = schedule_id;
        schedule::settle_new(&mut change);
        let created = self.save_new(by.clone(), change).await?;
        // An execution created before under the same idempotency key may have
        // started already.
        if !start_under_limits || created.status != ExecutionStatus::Queued {
            return Ok(created);
        }
        let change = self
            .as_scheduler("startExecution", &created.id, move |s, now| {
                limits::start_execution(&s.execution, &s.usage, SCHEDULER, now)
            })
            .await?;
        Ok(change.execution)
    }

    pub async fn update_execution(
        &self,
        by: &Principal,
        id: &str,
        input: UpdateExecutionInput,
    ) -> AppResult<Execution> {
        let update = |s: &Snapshot, actor: &str, now| {
            lifecycle::update(&s.execution, &s.webhooks, input, actor, now)
        };
        let change = self
            .apply_alone(by, Permission::Manage, "updateExecution", id, true, update)
            .await?;
        Ok(change.execution)
    }

    pub async fn start_execution(&self, by: &Principal, id: &str) -> AppResult<Execution> {
        self.manage(by, "startExecution", id, |s, actor, now| {
            limits::start_execution(&s.execution, &s.usage, actor, now)
        })
        .await
    }

    pub async fn pause_execution(
        &self,
        by: &Principal,
        id: &str,
        reason: Option<String>,
    ) -> AppResult<Execution> {
        self.manage(by, "pauseExecution", id, |s, actor, now| {
            lifecycle::pause(&s.execution, &s.steps, reason, actor, now)
        })
        .await
    }

    pub async fn resume_execution(&self, by: &Principal, id: &str) -> AppResult<Execution> {
        self.manage(by, "resumeExecution", id, |s, actor, now| {
            lifecycle::resume(&s.execution, actor, now)
        })
        .await
    }

    pub async fn cancel_execution(
        &self,
        by: &Principal,
        id: &str,
        reason: Option<String>,
    ) -> AppResult<Execution> {
        self.manage(by, "cancelExecution", id, |s, actor, now| {
            lifecycle::cancel(&s.execution, reason, actor, now)
        })
        .await
    }

    pub async fn complete_execution(
        &self,
        by: &Principal,
        id: &str,
        result: ExecutionResultInput,
    ) -> AppResult<Execution> {
        self.manage(by, "completeExecution", id, |s, actor, now| {
            lifecycle::complete(&s.execution, result, actor, now)
        })
        .await
    }

    pub async fn fail_execution(
        &self,
        by: &Principal,
        id: &str,
        error: ExecutionErrorInput,
    ) -> AppResult<Execution> {
        let random = rand::random::<f64>();
        self.manage(by, "failExecution", id, move |s, actor, now| {
            failure::fail_execution(&s.execution, error, random, actor, now)
        })
        .await
    }

    pub async fn retry_execution(&self, by: &Principal, id: &str) -> AppResult<Execution> {
        self.manage(by, "retryExecution", id, |s, actor, now| {
            limits::retry_execution(&s.execution, &s.steps, &s.usage, actor, now)
        })
        .await
    }

    pub async fn update_progress(
        &self,
        by: &Principal,
        id: &str,
        progress: f64,
    ) -> AppResult<Execution> {
        let report = move |s: &Snapshot, actor: &str, now| {
            lifecycle::update_progress(&s.execution, progress, actor, now)
        };
        let change = self.report(by, "updateProgress", id, report).await?;
        Ok(change.execution)
    }

    pub async fn record_metrics(
        &self,
        by: &Principal,
        id: &str,
        metrics: MetricsInput,
    ) -> AppResult<Execution> {
        let report = |s: &Snapshot, actor: &str, now| {
            lifecycle::record_metrics(&s.execution, metrics, actor, now)
        };
        let change = self.report(by, "recordMetrics", id, report).await?;
        Ok(change.execution)
    }

    pub async fn append_logs(
        &self,
        by: &Principal,
        id: &str,
        logs: Vec<LogInput>,
    ) -> AppResult<Vec<LogEntry>> {
        let report =
            |s: &Snapshot, actor: &str, now| lifecycle::append_logs(&s.execution, logs, actor, now);
        let change = self.report(by, "appendLogs", id, report).await?;
        Ok(change.logs)
    }

    pub async fn create_checkpoint(
        &self,
        by: &Principal,
        id: &str,
        input: CheckpointInput,
    ) -> AppResult<Checkpoint> {
        let report = |s: &Snapshot, actor: &str, now| {
            lifecycle::create_checkpoint(&s.execution, input, actor, now)
        };
        let change = self.report(by, "createCheckpoint", id, report).await?;
        (change.checkpoints.into_iter().next())
            .ok_or_else(|| AppError::Internal("no checkpoint was written".into()))
    }

    /// A lifecycle move (`Permission::Manage`), answered with the execution after it.
    async fn manage<F>(
        &self,
        by: &Principal,
        action: &'static str,
        id: &str,
        rule: F,
    ) -> AppResult<Execution>
    where
        F: FnOnce(&Snapshot, &str, Timestamp) -> AppResult<Change> + Send + 'static,
    {
        let change = self
            .submit(by.clone(), Permission::Manage, action, id, rule)
            .await?;
        Ok(change.execution)
    }

    /// A report about a running execution or step (`Permission::Report`).
    pub(super) async fn report<F>(
        &self,
        by: &Principal,
        action: &'static str,
        id: &str,
        rule: F,
    ) -> AppResult<Change>
    where
        F: FnOnce(&Snapshot, &str, Timestamp) -> AppResult<Change> + Send + 'static,
    {
        self.submit(by.clone(), Permission::Report, action, id, rule)
            .await
    }
}
