//! The index behind the analyst's commonest chart, `executionStats(groupBy: [SERVICE],
//! bucket: DAY)`: executions in the order of (service, UTC day, duration), carrying the
//! columns the statistics read. Both backends then read one index in group order, and
//! each group's durations arrive sorted for the percentiles, instead of sorting every
//! execution of the period (a million rows on the benchmark's Postgres).
//!
//! The day expression is the one `store::analytics` groups by; the planners match
//! index expressions by their form, so the two must stay the same.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m0005_daily_stats_index"
    }
}

const NAME: &str = "idx_executions_service_day_duration";
/// The key: service, UTC day (`store::analytics`' day bucket), duration.
const KEY: &str = "service_id, ((created_at / 86400000) * 86400000), duration_ms";
/// What the statistics read besides the key, and what a filter on the period or a
/// tenant scope checks: Postgres carries them with `INCLUDE`, SQLite as trailing key
/// columns (it has no `INCLUDE`), so either answers from the index alone.
const CARRIED: &str =
    "created_at, status, cost, tokens_used, api_calls, retries, customer_id, provider_id";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    /// Written as SQL: sea-query renders expression columns for Postgres only.
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let columns = match manager.get_database_backend() {
            DbBackend::Postgres => format!("({KEY}) INCLUDE ({CARRIED})"),
            _ => format!("({KEY}, {CARRIED})"),
        };
        manager
            .get_connection()
            .execute_unprepared(&format!(
                "CREATE INDEX IF NOT EXISTS {NAME} ON executions {columns}"
            ))
            .await
            .map(drop)
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name(NAME)
                    .table(Alias::new("executions"))
                    .to_owned(),
            )
            .await
    }
}
