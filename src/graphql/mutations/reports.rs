//! What agents and operators report about a running execution: progress, metrics,
//! logs and checkpoints.

use async_graphql::{Context, ID, Object, Result};

use super::mutate;
use crate::auth::Permission;
use crate::clock;
use crate::domain::inputs::*;
use crate::domain::lifecycle;
use crate::domain::records::{Checkpoint, Execution, LogEntry};
use crate::error::AppError;
use crate::graphql::errors::GqlResult;

#[derive(Default)]
pub struct ReportMutations;

#[Object]
impl ReportMutations {
    async fn update_progress(&self, ctx: &Context<'_>, id: ID, progress: f64) -> Result<Execution> {
        let change = mutate(
            ctx,
            Permission::Report,
            "updateProgress",
            &id,
            move |s, p| {
                lifecycle::update_progress(&s.execution, progress, &p.subject, clock::now())
            },
        )
        .await?;
        Ok(change.execution)
    }

    async fn record_metrics(
        &self,
        ctx: &Context<'_>,
        id: ID,
        metrics: MetricsInput,
    ) -> Result<Execution> {
        let change = mutate(ctx, Permission::Report, "recordMetrics", &id, |s, p| {
            lifecycle::record_metrics(&s.execution, metrics, &p.subject, clock::now())
        })
        .await?;
        Ok(change.execution)
    }

    async fn append_log(&self, ctx: &Context<'_>, id: ID, log: LogInput) -> Result<LogEntry> {
        let mut logs = self.append_logs(ctx, id, vec![log]).await?;
        logs.pop()
            .ok_or_else(|| AppError::Internal("no log was written".into()))
            .gql()
    }

    async fn append_logs(
        &self,
        ctx: &Context<'_>,
        id: ID,
        logs: Vec<LogInput>,
    ) -> Result<Vec<LogEntry>> {
        let change = mutate(ctx, Permission::Report, "appendLogs", &id, |s, p| {
            lifecycle::append_logs(&s.execution, logs, &p.subject, clock::now())
        })
        .await?;
        Ok(change.logs)
    }

    async fn create_checkpoint(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: CheckpointInput,
    ) -> Result<Checkpoint> {
        let change = mutate(ctx, Permission::Report, "createCheckpoint", &id, |s, p| {
            lifecycle::create_checkpoint(&s.execution, input, &p.subject, clock::now())
        })
        .await?;
        change
            .checkpoints
            .into_iter()
            .next()
            .ok_or_else(|| AppError::Internal("no checkpoint was written".into()))
            .gql()
    }
}
