//! Running a step's handler: under the step's timeout, with its lease renewed while
//! it runs, until it finishes or is interrupted (a change took the step back, the
//! lease was lost, the process is stopping).

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::Scheduler;
use super::handlers::{HandlerResult, StepCall, error};
use crate::clock;
use crate::domain::records::Step;
use crate::domain::schedule::Fence;
use crate::domain::validate::{self, MAX_JSON_BYTES};
use crate::domain::values::ExecutionError;

impl Scheduler {
    /// Runs the step's handler until it finishes (the outcome), or is interrupted
    /// (`None`): through `interrupt` (a refused start, or a change that took the step
    /// back) or by losing the lease.
    pub(super) async fn run_handler(
        &self,
        execution_id: &str,
        step: &Step,
        fence: &Fence,
        interrupt: CancellationToken,
    ) -> Option<HandlerResult> {
        let Some(handler) = self.0.handlers.get(&step.handler.kind) else {
            let message = format!("no handler for step kind `{}`", step.handler.kind);
            return Some(Err(error("SYSTEM_ERROR", message, false)));
        };
        let renewal = tokio::spawn(self.clone().keep_lease(
            execution_id.to_owned(),
            fence.clone(),
            interrupt.clone(),
        ));
        let call = StepCall {
            execution_id: execution_id.to_owned(),
            step_id: step.id.clone(),
            attempt: step.attempt,
            input: step.input.as_ref().map(|i| i.0.clone()),
            config: step.handler.config.as_ref().map(|c| c.0.clone()),
        };
        let mut running = tokio::spawn(handler.run(call));
        let timeout = step
            .timeout_ms
            .map(|ms| Duration::from_millis(ms.max(0) as u64))
            .unwrap_or(Duration::MAX);
        let outcome = tokio::select! {
            joined = tokio::time::timeout(timeout, &mut running) => Some(match joined {
                Ok(Ok(result)) => result,
                Ok(Err(panic)) => Err(error("SYSTEM_ERROR", format!("the handler failed: {panic}"), true)),
                Err(_) => Err(error(
                    "TIMEOUT",
                    format!("the step ran longer than {} ms", timeout.as_millis()),
                    true,
                )),
            }),
            _ = interrupt.cancelled() => None,
        };
        running.abort();
        renewal.abort();
        match outcome {
            Some(Ok(output)) => match unstorable(output.as_ref()) {
                Some(refused) => Some(Err(refused)),
                None => Some(Ok(output)),
            },
            other => other,
        }
    }

    /// Renews the lease every third of its length while the handler runs; interrupts
    /// the handler once the lease cannot be renewed (the step was taken back).
    async fn keep_lease(self, execution_id: String, fence: Fence, interrupt: CancellationToken) {
        let mut ticks = tokio::time::interval(self.0.config.lease / 3);
        ticks.tick().await;
        loop {
            ticks.tick().await;
            let now = clock::now();
            match self
                .0
                .store
                .renew_lease(&execution_id, &fence, now, self.lease_until(now))
                .await
            {
                Ok(true) => {}
                Ok(false) => {
                    interrupt.cancel();
                    return;
                }
                Err(error) => tracing::warn!(?error, "lease renewal failed"),
            }
        }
    }
}

/// Why a handler's output cannot be stored, if it cannot; the step then fails for
/// good (running it again would answer the same): `RESULT_TOO_LARGE` over
/// `MAX_JSON_BYTES`, `RESULT_INVALID` for text holding NUL.
fn unstorable(output: Option<&serde_json::Value>) -> Option<ExecutionError> {
    let refused = validate::storable_json("output", output?).err()?;
    let too_large = serde_json::to_vec(output?).map_or(true, |b| b.len() > MAX_JSON_BYTES);
    let code = if too_large {
        "RESULT_TOO_LARGE"
    } else {
        "RESULT_INVALID"
    };
    Some(error(code, refused.message(), false))
}
