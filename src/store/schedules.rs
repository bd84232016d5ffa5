//! Schedules in SQL: read one or a tenant's, find those whose firing is due, and
//! write one fenced by the version its writer read, with an audit row when a
//! client changed it. The firing state lives in the same row (`domain::recurring`).

use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};
use serde_json::json;

use super::Store;
use super::entities::{audit, schedule};
use super::limits::audit_row_of;
use super::mapping::{from_ms, to_ms};
use crate::auth::{Principal, TenantScope};
use crate::domain::records::Timestamp;
use crate::domain::recurring::{Overlap, Schedule};
use crate::error::{AppError, AppResult};

fn schedule_from_row(row: schedule::Model) -> AppResult<Schedule> {
    let overlap = Overlap::parse(&row.overlap)
        .ok_or_else(|| AppError::Internal(format!("schedule overlap `{}`", row.overlap)))?;
    Ok(Schedule {
        id: row.id,
        customer_id: row.customer_id,
        name: row.name,
        cron: row.cron,
        timezone: row.timezone,
        template: row.template,
        overlap,
        catch_up_window_ms: row.catch_up_window_ms,
        paused: row.paused,
        next_fire_at: row.next_fire_at.map(from_ms),
        pending_fire: row.pending_fire.map(from_ms),
        buffered_fire: row.buffered_fire.map(from_ms),
        last_fire_at: row.last_fire_at.map(from_ms),
        last_execution_id: row.last_execution_id,
        fires: row.fires,
        skipped: row.skipped,
        version: row.version,
        created_by: row.created_by,
        created_at: from_ms(row.created_at),
        updated_at: from_ms(row.updated_at),
    })
}

fn schedule_to_row(s: &Schedule) -> schedule::ActiveModel {
    schedule::ActiveModel {
        id: Set(s.id.clone()),
        customer_id: Set(s.customer_id.clone()),
        name: Set(s.name.clone()),
        cron: Set(s.cron.clone()),
        timezone: Set(s.timezone.clone()),
        template: Set(s.template.clone()),
        overlap: Set(s.overlap.as_str().to_owned()),
        catch_up_window_ms: Set(s.catch_up_window_ms),
        paused: Set(s.paused),
        next_fire_at: Set(s.next_fire_at.map(to_ms)),
        pending_fire: Set(s.pending_fire.map(to_ms)),
        buffered_fire: Set(s.buffered_fire.map(to_ms)),
        last_fire_at: Set(s.last_fire_at.map(to_ms)),
        last_execution_id: Set(s.last_execution_id.clone()),
        fires: Set(s.fires),
        skipped: Set(s.skipped),
        version: Set(s.version),
        created_by: Set(s.created_by.clone()),
        created_at: Set(to_ms(s.created_at)),
        updated_at: Set(to_ms(s.updated_at)),
    }
}

/// Schedules `scope` may see: those of its tenant.
fn visible(scope: &TenantScope) -> Condition {
    match scope {
        TenantScope::All => Condition::all(),
        TenantScope::Tenant(tenant) => {
            Condition::all().add(schedule::Column::CustomerId.eq(tenant.as_str()))
        }
        TenantScope::Unowned => Condition::all().add(schedule::Column::CustomerId.is_null()),
    }
}

/// Who changed a schedule, and how: its audit row.
pub struct ScheduleAudit<'a> {
    pub by: &'a Principal,
    pub action: &'static str,
}

impl Store {
    /// The schedule `id`, if `by` may see it.
    pub async fn schedule(&self, by: &Principal, id: &str) -> AppResult<Option<Schedule>> {
        let row = schedule::Entity::find_by_id(id.to_owned())
            .filter(visible(&by.scope()))
            .all(&self.db)
            .await?
            .into_iter()
            .next();
        row.map(schedule_from_row).transpose()
    }

    /// The schedules `by` may see, oldest first, at most `limit`.
    pub async fn schedules(&self, by: &Principal, limit: u64) -> AppResult<Vec<Schedule>> {
        let rows = schedule::Entity::find()
            .filter(visible(&by.scope()))
            .order_by_asc(schedule::Column::CreatedAt)
            .order_by_asc(schedule::Column::Id)
            .limit(limit)
            .all(&self.db)
            .await?;
        rows.into_iter().map(schedule_from_row).collect()
    }

    /// Schedules with something to do at `now`: an instant due, a claim to settle,
    /// or an instant held back.
    pub async fn due_schedules(&self, now: Timestamp, limit: u64) -> AppResult<Vec<String>> {
        let due = Condition::any()
            .add(
                Condition::all()
                    .add(schedule::Column::Paused.eq(false))
                    .add(schedule::Column::NextFireAt.lte(to_ms(now))),
            )
            .add(schedule::Column::PendingFire.is_not_null())
            .add(schedule::Column::BufferedFire.is_not_null());
        Ok(schedule::Entity::find()
            .select_only()
            .column(schedule::Column::Id)
            .filter(due)
            .order_by_asc(schedule::Column::NextFireAt)
            .limit(limit)
            .into_tuple()
            .all(&self.db)
            .await?)
    }

    /// The soonest instant any running schedule is due.
    pub async fn next_schedule_fire(&self) -> AppResult<Option<Timestamp>> {
        let soonest: Option<Option<i64>> = schedule::Entity::find()
            .select_only()
            .column_as(Expr::cust("MIN(next_fire_at)"), "soonest")
            .filter(schedule::Column::Paused.eq(false))
            .into_tuple()
            .one(&self.db)
            .await?;
        Ok(soonest.flatten().map(from_ms))
    }

    /// Writes `schedule` if its row is still at `read_version` (none: a new
    /// schedule), with `audit`'s row; false when another writer got there first.
    pub async fn save_schedule(
        &self,
        schedule: &Schedule,
        read_version: Option<i64>,
        audit: Option<ScheduleAudit<'_>>,
    ) -> AppResult<bool> {
        let (_turn, txn) = self.begin_write().await?;
        let row = schedule_to_row(schedule);
        let written = match read_version {
            None => {
                schedule::Entity::insert(row)
                    .exec_without_returning(&txn)
                    .await?;
                1
            }
            Some(version) => {
                schedule::Entity::update_many()
                    .set(row)
                    .filter(schedule::Column::Id.eq(schedule.id.as_str()))
                    .filter(schedule::Column::Version.eq(version))
                    .exec(&txn)
                    .await?
                    .rows_affected
            }
        };
        if written == 1
            && let Some(audit) = audit
        {
            let row = audit_row(audit, &schedule.id, schedule.updated_at);
            audit::Entity::insert(row)
                .exec_without_returning(&txn)
                .await?;
        }
        self.recorded(txn.commit().await.map_err(AppError::from))?;
        Ok(written == 1)
    }

    /// Deletes the schedule `id` with its audit row; false when `by` sees none.
    pub async fn delete_schedule(
        &self,
        audit: ScheduleAudit<'_>,
        id: &str,
        now: Timestamp,
    ) -> AppResult<bool> {
        let (_turn, txn) = self.begin_write().await?;
        let removed = schedule::Entity::delete_many()
            .filter(schedule::Column::Id.eq(id))
            .filter(visible(&audit.by.scope()))
            .exec(&txn)
            .await?
            .rows_affected;
        if removed > 0 {
            let row = audit_row(audit, id, now);
            audit::Entity::insert(row)
                .exec_without_returning(&txn)
                .await?;
        }
        self.recorded(txn.commit().await.map_err(AppError::from))?;
        Ok(removed > 0)
    }
}

fn audit_row(audit: ScheduleAudit<'_>, schedule_id: &str, at: Timestamp) -> audit::ActiveModel {
    let detail = json!({ "scheduleId": schedule_id });
    audit_row_of(audit.by, audit.action, detail, at)
}
