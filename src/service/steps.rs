//! Clients' commands on one step of an execution they drive themselves: start (adding
//! a step discovered while running), complete, fail and skip.

use async_graphql::Json;
use serde_json::Value;

use super::Service;
use crate::auth::Principal;
use crate::domain::inputs::*;
use crate::domain::records::Step;
use crate::domain::snapshot::Snapshot;
use crate::domain::{failure, steps};
use crate::error::AppResult;

impl Service {
    pub async fn start_step(
        &self,
        by: &Principal,
        execution_id: &str,
        step: StartStepInput,
    ) -> AppResult<Step> {
        let step_id = step.id.0.clone();
        let start = |s: &Snapshot, actor: &str, now| {
            steps::start_step(&s.execution, &s.steps, &s.usage, step, actor, now)
        };
        let change = self.report(by, "startStep", execution_id, start).await?;
        change.into_step(&step_id)
    }

    pub async fn complete_step(
        &self,
        by: &Principal,
        execution_id: &str,
        step_id: &str,
        output: Option<Json<Value>>,
        metrics: Option<StepMetricsInput>,
    ) -> AppResult<Step> {
        let id = step_id.to_owned();
        let complete = move |s: &Snapshot, actor: &str, now| {
            steps::complete_step(&s.execution, &s.steps, &id, output, metrics, actor, now)
        };
        let change = self
            .report(by, "completeStep", execution_id, complete)
            .await?;
        change.into_step(step_id)
    }

    pub async fn fail_step(
        &self,
        by: &Principal,
        execution_id: &str,
        step_id: &str,
        error: ExecutionErrorInput,
    ) -> AppResult<Step> {
        let (id, random) = (step_id.to_owned(), rand::random::<f64>());
        let fail = move |s: &Snapshot, actor: &str, now| {
            failure::fail_reported_step(&s.execution, &s.steps, &id, error, random, actor, now)
        };
        let change = self.report(by, "failStep", execution_id, fail).await?;
        change.into_step(step_id)
    }

    pub async fn skip_step(
        &self,
        by: &Principal,
        execution_id: &str,
        step_id: &str,
        reason: Option<String>,
    ) -> AppResult<Step> {
        let id = step_id.to_owned();
        let skip = move |s: &Snapshot, actor: &str, now| {
            steps::skip_step(&s.execution, &s.steps, &id, reason, actor, now)
        };
        let change = self.report(by, "skipStep", execution_id, skip).await?;
        change.into_step(step_id)
    }
}
