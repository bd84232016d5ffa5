//! Flow control: the limits admins set (`limits`: per key or key template, a
//! concurrency, executions, a rate and its burst, a budget per period), what each
//! limited key holds (`limit_usage`: slots held by running steps and by executions,
//! the rate's next arrival time, what was spent in the current period), and beside
//! each
//! step (and execution) the keys whose slots it holds, what it waits on (and until
//! when); the custom keys executions and steps count against (`concurrency_key`);
//! an execution's budget.

use sea_orm_migration::{prelude::*, schema::*};

use crate::index;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m0008_flow_control"
    }
}

#[derive(DeriveIden, Clone, Copy)]
enum Executions {
    Table,
    ConcurrencyKey,
    Holds,
    WaitingOn,
    Budget,
}

#[derive(DeriveIden, Clone, Copy)]
enum ExecutionSteps {
    Table,
    ConcurrencyKey,
    Holds,
    WaitingOn,
    WaitingUntil,
}

#[derive(DeriveIden, Clone, Copy)]
enum Limits {
    Table,
    Key,
    Concurrency,
    Executions,
    Share,
    RateCount,
    RatePeriodMs,
    Burst,
    MaxCost,
    MaxTokens,
    BudgetPeriod,
    UpdatedAt,
    UpdatedBy,
}

#[derive(DeriveIden, Clone, Copy)]
enum LimitUsage {
    Table,
    Key,
    Running,
    Executions,
    Tat,
    SpentCost,
    SpentTokens,
    PeriodStart,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        use ExecutionSteps as S;
        // One column per statement: SQLite's ALTER TABLE adds one column at a time.
        for column in [
            string_null(S::ConcurrencyKey),
            json_binary_null(S::Holds),
            string_null(S::WaitingOn),
            big_integer_null(S::WaitingUntil),
        ] {
            manager
                .alter_table(Table::alter().table(S::Table).add_column(column).to_owned())
                .await?;
        }
        for column in [
            string_null(Executions::ConcurrencyKey),
            json_binary_null(Executions::Holds),
            string_null(Executions::WaitingOn),
            json_binary_null(Executions::Budget),
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Executions::Table)
                        .add_column(column)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .create_index(index(Executions::Table, &[Executions::WaitingOn], false))
            .await?;
        manager
            .create_index(index(S::Table, &[S::WaitingOn], false))
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Limits::Table)
                    .if_not_exists()
                    .col(string(Limits::Key).primary_key())
                    .col(integer_null(Limits::Concurrency))
                    .col(integer_null(Limits::Executions))
                    .col(integer_null(Limits::Share))
                    .col(integer_null(Limits::RateCount))
                    .col(big_integer_null(Limits::RatePeriodMs))
                    .col(integer_null(Limits::Burst))
                    .col(double_null(Limits::MaxCost))
                    .col(big_integer_null(Limits::MaxTokens))
                    .col(string_null(Limits::BudgetPeriod))
                    .col(big_integer(Limits::UpdatedAt))
                    .col(string(Limits::UpdatedBy))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(LimitUsage::Table)
                    .if_not_exists()
                    .col(string(LimitUsage::Key).primary_key())
                    .col(big_integer(LimitUsage::Running).default(0))
                    .col(big_integer(LimitUsage::Executions).default(0))
                    .col(big_integer_null(LimitUsage::Tat))
                    .col(double(LimitUsage::SpentCost).default(0.0))
                    .col(big_integer(LimitUsage::SpentTokens).default(0))
                    .col(big_integer_null(LimitUsage::PeriodStart))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Limits::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(LimitUsage::Table).to_owned())
            .await
    }
}
