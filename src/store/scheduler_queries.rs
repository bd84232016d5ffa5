//! The scheduler's queries: leases (renew, find expired), steps offered to external
//! claimers, handed-out steps the queue may have lost, executions out of time and
//! retries that are due. State changes go through the service; the one exception is
//! a lease renewal, which is bookkeeping no client sees and has no event.

use std::collections::HashMap;

use sea_orm::sea_query::{Expr, Func, Query};
use sea_orm::{
    ColumnTrait, Condition, EntityTrait, QueryFilter, QueryOrder, QuerySelect, sea_query::ExprTrait,
};

use super::Store;
use super::entities::*;
use super::mapping::*;
use super::scope;
use crate::auth::Principal;
use crate::domain::claim::Offer;
use crate::domain::records::{Execution, Step, Timestamp};
use crate::domain::schedule::{EXTERNAL, Fence, StepJob};
use crate::domain::status::{ExecutionStatus, StepStatus};
use crate::domain::values::Priority;
use crate::error::AppResult;

/// The job of a handed-out step read as a row, at its execution's priority (none
/// when the execution is gone).
pub(super) fn step_job(
    executions: &HashMap<String, Execution>,
    execution_id: String,
    step_id: String,
    attempt: i32,
    ready_at: i64,
) -> Option<StepJob> {
    let priority = executions.get(&execution_id)?.priority;
    Some(StepJob {
        execution_id,
        step_id,
        attempt,
        priority,
        ready_at: from_ms(ready_at),
    })
}

/// Each step to its execution, for the joins of the queries here.
fn steps_to_execution() -> sea_orm::RelationDef {
    step::Entity::belongs_to(execution::Entity)
        .from(step::Column::ExecutionId)
        .to(execution::Column::Id)
        .into()
}

const RUNNABLE: [ExecutionStatus; 2] = [ExecutionStatus::Starting, ExecutionStatus::Running];

fn runnable_executions() -> sea_orm::sea_query::SelectStatement {
    Query::select()
        .column(execution::Column::Id)
        .from(execution::Entity)
        .and_where(execution::Column::Status.is_in(RUNNABLE.map(|s| s.as_str())))
        .to_owned()
}

/// Offers read per query while looking for ones a claimer fits.
const OFFERS_PAGE: u64 = 100;
/// Offers read per level and claim at the most: a claimer that fits none of
/// thousands of offers costs a bounded read, and finds what it fits behind them
/// once the older ones are taken.
const OFFERS_SCANNED: u64 = 5_000;

impl Store {
    /// Extends the lease `fence` holds until `until`; false when the attempt is no
    /// longer running under that owner (it was interrupted, reaped or finished) or
    /// its lease already ran out at `now`.
    pub async fn renew_lease(
        &self,
        execution_id: &str,
        fence: &Fence,
        now: Timestamp,
        until: Timestamp,
    ) -> AppResult<bool> {
        let renewed = step::Entity::update_many()
            .col_expr(step::Column::LeaseExpiresAt, Expr::value(to_ms(until)))
            .filter(step::Column::ExecutionId.eq(execution_id))
            .filter(step::Column::StepId.eq(&fence.step_id))
            .filter(step::Column::Attempt.eq(fence.attempt))
            .filter(step::Column::LeaseOwner.eq(&fence.owner))
            .filter(step::Column::Status.eq(StepStatus::Running.as_str()))
            .filter(step::Column::LeaseExpiresAt.gt(to_ms(now)))
            .exec(&self.db)
            .await?;
        Ok(renewed.rows_affected == 1)
    }

    /// Per priority level, the built-in steps handed out and not started (queued,
    /// or waiting on a limit): how many, and since when the oldest waits.
    pub async fn queue_depths(&self) -> AppResult<Vec<(Priority, i64, Option<Timestamp>)>> {
        let rows: Vec<(i16, i64, Option<i64>)> = step::Entity::find()
            .select_only()
            .column_as(
                Expr::col((execution::Entity, execution::Column::Priority)),
                "priority",
            )
            .column_as(Expr::cust("COUNT(*)"), "depth")
            .column_as(Expr::cust("MIN(execution_steps.ready_at)"), "oldest")
            .join(sea_orm::JoinType::InnerJoin, steps_to_execution())
            .filter(step::Column::Status.eq(StepStatus::Pending.as_str()))
            .filter(step::Column::HandlerKind.ne(EXTERNAL))
            .filter(step::Column::ReadyAt.is_not_null())
            .group_by(Expr::col((execution::Entity, execution::Column::Priority)))
            .into_tuple()
            .all(&self.db)
            .await?;
        Ok(rows
            .into_iter()
            .map(|(rank, depth, oldest)| (Priority::from_rank(rank), depth, oldest.map(from_ms)))
            .collect())
    }

    /// Running steps whose lease ran out before `now`: (execution, step, attempt).
    pub async fn expired_leases(
        &self,
        now: Timestamp,
        limit: u64,
    ) -> AppResult<Vec<(String, String, i32)>> {
        Ok(step::Entity::find()
            .select_only()
            .columns([
                step::Column::ExecutionId,
                step::Column::StepId,
                step::Column::Attempt,
            ])
            .filter(step::Column::Status.eq(StepStatus::Running.as_str()))
            .filter(step::Column::LeaseExpiresAt.lte(to_ms(now)))
            .limit(limit)
            .into_tuple()
            .all(&self.db)
            .await?)
    }

    /// Built-in steps handed out before `cutoff` that no worker has started and that
    /// wait on no limit: the queue may have lost their jobs.
    pub async fn unstarted_jobs(&self, cutoff: Timestamp, limit: u64) -> AppResult<Vec<StepJob>> {
        let rows: Vec<(String, String, i32, i64)> = step::Entity::find()
            .select_only()
            .columns([
                step::Column::ExecutionId,
                step::Column::StepId,
                step::Column::Attempt,
                step::Column::ReadyAt,
            ])
            .filter(step::Column::Status.eq(StepStatus::Pending.as_str()))
            .filter(step::Column::HandlerKind.ne(EXTERNAL))
            // A step waiting on a limit is queued when its turn comes (`waiting`).
            .filter(step::Column::WaitingOn.is_null())
            .filter(step::Column::ReadyAt.lte(to_ms(cutoff)))
            .filter(step::Column::ExecutionId.in_subquery(runnable_executions()))
            .order_by_asc(step::Column::ReadyAt)
            .limit(limit)
            .into_tuple()
            .all(&self.db)
            .await?;
        let ids: Vec<String> = rows.iter().map(|r| r.0.clone()).collect();
        let executions = self.executions_by_id(ids).await?;
        Ok(rows
            .into_iter()
            .filter_map(|(execution_id, step_id, attempt, ready_at)| {
                step_job(&executions, execution_id, step_id, attempt, ready_at)
            })
            .collect())
    }

    pub(super) async fn executions_by_id(
        &self,
        ids: Vec<String>,
    ) -> AppResult<HashMap<String, Execution>> {
        execution::Entity::find()
            .filter(execution::Column::Id.is_in(ids))
            .all(&self.db)
            .await?
            .into_iter()
            .map(|row| execution_from_row(row).map(|e| (e.id.clone(), e)))
            .collect()
    }

    /// RUNNING executions whose last checkpoint (or, without one, whose start) is no
    /// later than `cutoff`.
    pub async fn checkpoints_due(&self, cutoff: Timestamp, limit: u64) -> AppResult<Vec<String>> {
        let last_checkpoint = Query::select()
            .expr(Expr::col((checkpoint::Entity, checkpoint::Column::Timestamp)).max())
            .from(checkpoint::Entity)
            .and_where(
                Expr::col((checkpoint::Entity, checkpoint::Column::ExecutionId))
                    .equals((execution::Entity, execution::Column::Id)),
            )
            .to_owned();
        let since = Func::coalesce([
            Expr::SubQuery(None, Box::new(last_checkpoint.into())),
            Expr::col((execution::Entity, execution::Column::StartedAt)),
        ]);
        Ok(execution::Entity::find()
            .select_only()
            .column(execution::Column::Id)
            .filter(execution::Column::Status.eq(ExecutionStatus::Running.as_str()))
            .filter(Expr::expr(since).lte(to_ms(cutoff)))
            .limit(limit)
            .into_tuple()
            .all(&self.db)
            .await?)
    }

    /// Executions that are STARTING or RUNNING longer than their timeout allows.
    pub async fn timed_out(&self, now: Timestamp, limit: u64) -> AppResult<Vec<String>> {
        let elapsed = Expr::val(to_ms(now))
            .sub(Expr::col(execution::Column::StartedAt))
            .sub(Expr::col(execution::Column::PausedMs));
        Ok(execution::Entity::find()
            .select_only()
            .column(execution::Column::Id)
            .filter(execution::Column::Status.is_in(RUNNABLE.map(|s| s.as_str())))
            .filter(execution::Column::StartedAt.is_not_null())
            .filter(elapsed.gt(Expr::col(execution::Column::TimeoutMs)))
            .limit(limit)
            .into_tuple()
            .all(&self.db)
            .await?)
    }

    /// FAILED executions whose retry was due at or before `cutoff`.
    pub async fn due_retries(&self, cutoff: Timestamp, limit: u64) -> AppResult<Vec<String>> {
        Ok(execution::Entity::find()
            .select_only()
            .column(execution::Column::Id)
            .filter(execution::Column::Status.eq(ExecutionStatus::Failed.as_str()))
            .filter(execution::Column::RetryAt.lte(to_ms(cutoff)))
            .limit(limit)
            .into_tuple()
            .all(&self.db)
            .await?)
    }

    /// QUEUED executions whose `startAt` was before `cutoff` and that wait on no
    /// limit: their start job was lost.
    pub async fn due_starts(&self, cutoff: Timestamp, limit: u64) -> AppResult<Vec<String>> {
        Ok(execution::Entity::find()
            .select_only()
            .column(execution::Column::Id)
            .filter(execution::Column::Status.eq(ExecutionStatus::Queued.as_str()))
            .filter(execution::Column::ScheduledAt.lte(to_ms(cutoff)))
            .filter(execution::Column::WaitingOn.is_null())
            .limit(limit)
            .into_tuple()
            .all(&self.db)
            .await?)
    }

    /// The oldest steps of each priority level offered to claimers (handed out,
    /// pending, of one of `kinds`, in a RUNNING execution the principal may see) that
    /// the claimer `fits`, at most `per_level` of each. Offers are read a page at a
    /// time until enough fit or none are left (or `OFFERS_SCANNED` were read), so a
    /// claimer finds what it fits behind the older offers it does not.
    pub async fn offers(
        &self,
        principal: &Principal,
        kinds: &[String],
        fits: impl Fn(&Execution, &Step) -> bool,
        per_level: usize,
    ) -> AppResult<Vec<Offer>> {
        let mut offers = Vec::new();
        for priority in Priority::ALL {
            let mut fitting = 0;
            for page in 0..OFFERS_SCANNED / OFFERS_PAGE {
                let visible = Query::select()
                    .column(execution::Column::Id)
                    .from(execution::Entity)
                    .and_where(execution::Column::Status.eq(ExecutionStatus::Running.as_str()))
                    .and_where(execution::Column::Priority.eq(priority.rank()))
                    .cond_where(scope::condition(&principal.scope()))
                    .to_owned();
                let rows = step::Entity::find()
                    .filter(
                        Condition::all()
                            .add(step::Column::Status.eq(StepStatus::Pending.as_str()))
                            .add(step::Column::ReadyAt.is_not_null())
                            .add(step::Column::HandlerKind.is_in(kinds.iter().map(String::as_str)))
                            .add(step::Column::ExecutionId.in_subquery(visible)),
                    )
                    .order_by_asc(step::Column::ReadyAt)
                    .order_by_asc(step::Column::ExecutionId)
                    .order_by_asc(step::Column::StepId)
                    .offset(page * OFFERS_PAGE)
                    .limit(OFFERS_PAGE)
                    .all(&self.db)
                    .await?;
                let last_page = (rows.len() as u64) < OFFERS_PAGE;
                let ids = rows.iter().map(|r| r.execution_id.clone()).collect();
                let executions = self.executions_by_id(ids).await?;
                for row in rows {
                    let Some(execution) = executions.get(&row.execution_id) else {
                        continue;
                    };
                    let step = step_from_row(row)?;
                    if fitting < per_level && fits(execution, &step) {
                        fitting += 1;
                        offers.push(Offer {
                            execution: execution.clone(),
                            step,
                        });
                    }
                }
                if last_page || fitting >= per_level {
                    break;
                }
            }
        }
        Ok(offers)
    }
}
