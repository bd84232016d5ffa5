//! Schedules: executions created from a template on a cron expression in a time
//! zone (`schedules`), each execution linked to the schedule that made it
//! (`executions.schedule_id`). A schedule row also holds its firing state: the next
//! instant due, an instant claimed whose execution is not yet created
//! (`pending_fire`), one held back by the BUFFER_ONE overlap policy
//! (`buffered_fire`), and a version that fences concurrent firings.

use sea_orm_migration::{prelude::*, schema::*};

use crate::index;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m0010_schedules"
    }
}

#[derive(DeriveIden, Clone, Copy)]
enum Executions {
    Table,
    ScheduleId,
}

#[derive(DeriveIden, Clone, Copy)]
enum Schedules {
    Table,
    Id,
    CustomerId,
    Name,
    Cron,
    Timezone,
    Template,
    Overlap,
    CatchUpWindowMs,
    Paused,
    NextFireAt,
    PendingFire,
    BufferedFire,
    LastFireAt,
    LastExecutionId,
    Fires,
    Skipped,
    Version,
    CreatedBy,
    CreatedAt,
    UpdatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        use Schedules as S;
        manager
            .create_table(
                Table::create()
                    .table(S::Table)
                    .if_not_exists()
                    .col(string(S::Id).primary_key())
                    .col(string_null(S::CustomerId))
                    .col(string_null(S::Name))
                    .col(string(S::Cron))
                    .col(string(S::Timezone))
                    .col(json_binary(S::Template))
                    .col(string(S::Overlap))
                    .col(big_integer(S::CatchUpWindowMs))
                    .col(boolean(S::Paused))
                    .col(big_integer_null(S::NextFireAt))
                    .col(big_integer_null(S::PendingFire))
                    .col(big_integer_null(S::BufferedFire))
                    .col(big_integer_null(S::LastFireAt))
                    .col(string_null(S::LastExecutionId))
                    .col(big_integer(S::Fires))
                    .col(big_integer(S::Skipped))
                    .col(big_integer(S::Version))
                    .col(string(S::CreatedBy))
                    .col(big_integer(S::CreatedAt))
                    .col(big_integer(S::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(S::Table, &[S::NextFireAt], false))
            .await?;
        manager
            .create_index(index(S::Table, &[S::CustomerId], false))
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Executions::Table)
                    .add_column(string_null(Executions::ScheduleId))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(Executions::Table, &[Executions::ScheduleId], false))
            .await
    }
}
