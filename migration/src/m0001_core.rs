//! The core tables: executions and everything that hangs off them (steps, tags, logs,
//! checkpoints, events, webhooks and their deliveries), the audit log and idempotency
//! keys. Times are stored as UTC epoch milliseconds (BIGINT), so comparisons, bucketing
//! and durations are plain integer arithmetic on SQLite and Postgres alike.

use sea_orm_migration::{prelude::*, schema::*};

use crate::index;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m0001_core"
    }
}

#[derive(DeriveIden, Clone, Copy)]
enum Executions {
    Table,
    Id,
    OrderId,
    ServiceId,
    CustomerId,
    ProviderId,
    Status,
    Priority,
    Progress,
    ProgressExplicit,
    Assignee,
    AssigneeType,
    AssigneeId,
    AssigneeModel,
    Result,
    ResultSummary,
    Error,
    ErrorCode,
    ErrorMessage,
    ErrorRecoverable,
    Metrics,
    StartedAt,
    CompletedAt,
    DurationMs,
    TokensUsed,
    Cost,
    ApiCalls,
    Retries,
    TimeoutMs,
    RetryPolicy,
    Tags,
    Environment,
    Version,
    Metadata,
    LastSequence,
    PausedAt,
    PausedMs,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum ExecutionTags {
    Table,
    ExecutionId,
    Tag,
}

#[derive(DeriveIden, Clone, Copy)]
enum ExecutionSteps {
    Table,
    ExecutionId,
    StepId,
    Idx,
    Name,
    Status,
    DependsOn,
    HandlerKind,
    HandlerConfig,
    Assignee,
    Input,
    Output,
    Error,
    StartedAt,
    CompletedAt,
    DurationMs,
    TimeoutMs,
    Retries,
    Attempt,
    Metadata,
}

#[derive(DeriveIden, Clone, Copy)]
enum ExecutionLogs {
    Table,
    Id,
    ExecutionId,
    Timestamp,
    Level,
    Message,
    StepId,
    Context,
    Metadata,
}

#[derive(DeriveIden, Clone, Copy)]
enum Checkpoints {
    Table,
    Id,
    ExecutionId,
    Timestamp,
    StepId,
    State,
    Metadata,
}

#[derive(DeriveIden, Clone, Copy)]
enum ExecutionEvents {
    Table,
    Id,
    ExecutionId,
    Sequence,
    EventType,
    Timestamp,
    Status,
    Progress,
    Payload,
    Actor,
    Reason,
}

#[derive(DeriveIden, Clone, Copy)]
enum Webhooks {
    Table,
    Id,
    ExecutionId,
    Url,
    Events,
    Headers,
    Secret,
    Retries,
    TimeoutMs,
    CreatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum WebhookDeliveries {
    Table,
    Id,
    WebhookId,
    EventType,
    Sequence,
    Attempt,
    StatusCode,
    Ok,
    Error,
    DeliveredAt,
    DurationMs,
}

#[derive(DeriveIden, Clone, Copy)]
enum AuditLog {
    Table,
    Id,
    At,
    Subject,
    Role,
    Tenant,
    Action,
    ExecutionId,
    Detail,
}

#[derive(DeriveIden, Clone, Copy)]
enum IdempotencyKeys {
    Table,
    Tenant,
    Key,
    ExecutionId,
    CreatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        use Executions as E;
        manager
            .create_table(
                Table::create()
                    .table(E::Table)
                    .if_not_exists()
                    .col(string(E::Id).primary_key())
                    .col(string(E::OrderId))
                    .col(string(E::ServiceId))
                    .col(string_null(E::CustomerId))
                    .col(string_null(E::ProviderId))
                    .col(string(E::Status))
                    .col(small_integer(E::Priority))
                    .col(double(E::Progress))
                    .col(boolean(E::ProgressExplicit))
                    .col(json_binary_null(E::Assignee))
                    .col(string_null(E::AssigneeType))
                    .col(string_null(E::AssigneeId))
                    .col(string_null(E::AssigneeModel))
                    .col(json_binary_null(E::Result))
                    .col(text_null(E::ResultSummary))
                    .col(json_binary_null(E::Error))
                    .col(string_null(E::ErrorCode))
                    .col(text_null(E::ErrorMessage))
                    .col(boolean_null(E::ErrorRecoverable))
                    .col(json_binary(E::Metrics))
                    .col(big_integer_null(E::StartedAt))
                    .col(big_integer_null(E::CompletedAt))
                    .col(big_integer_null(E::DurationMs))
                    .col(big_integer_null(E::TokensUsed))
                    .col(double_null(E::Cost))
                    .col(big_integer_null(E::ApiCalls))
                    .col(integer(E::Retries))
                    .col(big_integer(E::TimeoutMs))
                    .col(json_binary_null(E::RetryPolicy))
                    .col(json_binary(E::Tags))
                    .col(string_null(E::Environment))
                    .col(string_null(E::Version))
                    .col(json_binary_null(E::Metadata))
                    .col(big_integer(E::LastSequence))
                    .col(big_integer_null(E::PausedAt))
                    .col(big_integer(E::PausedMs))
                    .col(big_integer(E::CreatedAt))
                    .col(big_integer(E::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        for column in [
            E::OrderId,
            E::ServiceId,
            E::CustomerId,
            E::ProviderId,
            E::Status,
            E::Priority,
            E::AssigneeType,
            E::AssigneeId,
            E::AssigneeModel,
            E::Progress,
            E::DurationMs,
            E::Cost,
            E::TokensUsed,
            E::Retries,
            E::ErrorCode,
            E::Environment,
            E::UpdatedAt,
            E::StartedAt,
            E::CompletedAt,
        ] {
            manager
                .create_index(index(E::Table, &[column, E::CreatedAt], false))
                .await?;
        }
        manager
            .create_index(index(E::Table, &[E::CreatedAt, E::Id], false))
            .await?;

        use ExecutionTags as T;
        manager
            .create_table(
                Table::create()
                    .table(T::Table)
                    .if_not_exists()
                    .col(string(T::ExecutionId))
                    .col(string(T::Tag))
                    .primary_key(Index::create().col(T::ExecutionId).col(T::Tag))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(T::Table, &[T::Tag, T::ExecutionId], false))
            .await?;

        use ExecutionSteps as S;
        manager
            .create_table(
                Table::create()
                    .table(S::Table)
                    .if_not_exists()
                    .col(string(S::ExecutionId))
                    .col(string(S::StepId))
                    .col(integer(S::Idx))
                    .col(string(S::Name))
                    .col(string(S::Status))
                    .col(json_binary(S::DependsOn))
                    .col(string(S::HandlerKind))
                    .col(json_binary_null(S::HandlerConfig))
                    .col(json_binary_null(S::Assignee))
                    .col(json_binary_null(S::Input))
                    .col(json_binary_null(S::Output))
                    .col(json_binary_null(S::Error))
                    .col(big_integer_null(S::StartedAt))
                    .col(big_integer_null(S::CompletedAt))
                    .col(big_integer_null(S::DurationMs))
                    .col(big_integer_null(S::TimeoutMs))
                    .col(integer(S::Retries))
                    .col(integer(S::Attempt))
                    .col(json_binary_null(S::Metadata))
                    .primary_key(Index::create().col(S::ExecutionId).col(S::StepId))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(S::Table, &[S::ExecutionId, S::Idx], false))
            .await?;
        manager
            .create_index(index(S::Table, &[S::Name, S::Status], false))
            .await?;

        use ExecutionLogs as L;
        manager
            .create_table(
                Table::create()
                    .table(L::Table)
                    .if_not_exists()
                    .col(string(L::Id).primary_key())
                    .col(string(L::ExecutionId))
                    .col(big_integer(L::Timestamp))
                    .col(string(L::Level))
                    .col(text(L::Message))
                    .col(string_null(L::StepId))
                    .col(json_binary_null(L::Context))
                    .col(json_binary_null(L::Metadata))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(L::Table, &[L::ExecutionId, L::Id], false))
            .await?;
        manager
            .create_index(index(L::Table, &[L::Timestamp], false))
            .await?;

        use Checkpoints as C;
        manager
            .create_table(
                Table::create()
                    .table(C::Table)
                    .if_not_exists()
                    .col(string(C::Id).primary_key())
                    .col(string(C::ExecutionId))
                    .col(big_integer(C::Timestamp))
                    .col(string_null(C::StepId))
                    .col(json_binary(C::State))
                    .col(json_binary_null(C::Metadata))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(C::Table, &[C::ExecutionId, C::Id], false))
            .await?;

        use ExecutionEvents as V;
        manager
            .create_table(
                Table::create()
                    .table(V::Table)
                    .if_not_exists()
                    .col(string(V::Id).primary_key())
                    .col(string(V::ExecutionId))
                    .col(big_integer(V::Sequence))
                    .col(string(V::EventType))
                    .col(big_integer(V::Timestamp))
                    .col(string(V::Status))
                    .col(double(V::Progress))
                    .col(json_binary(V::Payload))
                    .col(string_null(V::Actor))
                    .col(text_null(V::Reason))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(V::Table, &[V::ExecutionId, V::Sequence], true))
            .await?;

        use Webhooks as W;
        manager
            .create_table(
                Table::create()
                    .table(W::Table)
                    .if_not_exists()
                    .col(string(W::Id).primary_key())
                    .col(string(W::ExecutionId))
                    .col(text(W::Url))
                    .col(json_binary(W::Events))
                    .col(json_binary_null(W::Headers))
                    .col(string_null(W::Secret))
                    .col(integer(W::Retries))
                    .col(big_integer(W::TimeoutMs))
                    .col(big_integer(W::CreatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(W::Table, &[W::ExecutionId], false))
            .await?;

        use WebhookDeliveries as D;
        manager
            .create_table(
                Table::create()
                    .table(D::Table)
                    .if_not_exists()
                    .col(string(D::Id).primary_key())
                    .col(string(D::WebhookId))
                    .col(string(D::EventType))
                    .col(big_integer(D::Sequence))
                    .col(integer(D::Attempt))
                    .col(integer_null(D::StatusCode))
                    .col(boolean(D::Ok))
                    .col(text_null(D::Error))
                    .col(big_integer(D::DeliveredAt))
                    .col(big_integer(D::DurationMs))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(D::Table, &[D::WebhookId, D::DeliveredAt], false))
            .await?;

        use AuditLog as A;
        manager
            .create_table(
                Table::create()
                    .table(A::Table)
                    .if_not_exists()
                    .col(string(A::Id).primary_key())
                    .col(big_integer(A::At))
                    .col(string(A::Subject))
                    .col(string(A::Role))
                    .col(string_null(A::Tenant))
                    .col(string(A::Action))
                    .col(string_null(A::ExecutionId))
                    .col(json_binary_null(A::Detail))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(A::Table, &[A::ExecutionId, A::At], false))
            .await?;

        use IdempotencyKeys as K;
        manager
            .create_table(
                Table::create()
                    .table(K::Table)
                    .if_not_exists()
                    .col(string(K::Tenant))
                    .col(string(K::Key))
                    .col(string(K::ExecutionId))
                    .col(big_integer(K::CreatedAt))
                    .primary_key(Index::create().col(K::Tenant).col(K::Key))
                    .to_owned(),
            )
            .await?;
        Ok(())
    }
}
