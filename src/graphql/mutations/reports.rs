//! What agents and operators report about a running execution: progress, metrics,
//! logs and checkpoints.

use async_graphql::{Context, ID, Object, Result};

use crate::domain::inputs::*;
use crate::domain::records::{Checkpoint, Execution, LogEntry};
use crate::error::AppError;
use crate::graphql::context::{authenticated, service};
use crate::graphql::errors::GqlResult;

#[derive(Default)]
pub struct ReportMutations;

#[Object]
impl ReportMutations {
    async fn update_progress(&self, ctx: &Context<'_>, id: ID, progress: f64) -> Result<Execution> {
        let by = authenticated(ctx).gql()?;
        service(ctx).update_progress(&by, &id, progress).await.gql()
    }

    async fn record_metrics(
        &self,
        ctx: &Context<'_>,
        id: ID,
        metrics: MetricsInput,
    ) -> Result<Execution> {
        let by = authenticated(ctx).gql()?;
        service(ctx).record_metrics(&by, &id, metrics).await.gql()
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
        let by = authenticated(ctx).gql()?;
        service(ctx).append_logs(&by, &id, logs).await.gql()
    }

    async fn create_checkpoint(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: CheckpointInput,
    ) -> Result<Checkpoint> {
        let by = authenticated(ctx).gql()?;
        service(ctx).create_checkpoint(&by, &id, input).await.gql()
    }
}
