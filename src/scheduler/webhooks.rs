//! Webhook delivery: a committed event that an execution's webhooks want is in the
//! outbox (written with the event) and becomes a job; the job POSTs the signed
//! payload to each such webhook, stores every attempt (`Webhook.deliveries`), queues
//! the next attempt after a backoff while the webhook's `retries` allow, and takes
//! the event out of the outbox. The reconciler queues what the outbox still holds.
//! Delivery is at least once (a receiver tells repeats by `sequence`). Destinations
//! in private ranges are refused unless `--allow-private-destinations` (`egress`).

use std::time::{Duration, Instant};

use chrono::Utc;
use reqwest::header::CONTENT_TYPE;
use serde_json::Value;

use super::queue::Job;
use super::{Scheduler, egress};
use crate::auth::Principal;
use crate::clock;
use crate::domain::change::Change;
use crate::domain::records::{Event, Execution, Webhook, WebhookDelivery, new_id};
use crate::domain::webhooks::{self, backoff, event_name, payload, signature};
use crate::error::AppResult;

/// The delivery jobs of a committed change: one per event its webhooks want.
pub(super) fn jobs(change: &Change) -> Vec<Job> {
    webhooks::wanted(change)
        .map(|e| first_delivery(&e.execution_id, e.sequence))
        .collect()
}

/// The job of an event's first delivery round, to every webhook that wants it.
pub(super) fn first_delivery(execution_id: &str, sequence: i64) -> Job {
    Job::Webhook {
        execution_id: execution_id.to_owned(),
        sequence,
        webhook_id: None,
        attempt: 1,
    }
}

impl Scheduler {
    /// Delivers event `sequence` of an execution to its webhooks that want it (or to
    /// the one being retried), each attempt stored.
    pub(super) async fn deliver(
        &self,
        execution_id: &str,
        sequence: i64,
        webhook_id: Option<&str>,
        attempt: i32,
    ) {
        let store = self.store();
        let loaded = async {
            let execution = store
                .execution(&Principal::scheduler(), execution_id)
                .await?;
            let event = store.event(execution_id, sequence).await?;
            let webhooks = store.webhooks(execution_id).await?;
            AppResult::Ok((execution, event, webhooks))
        };
        let (execution, event, webhooks) = match loaded.await {
            Ok((Some(execution), Some(event), webhooks)) => (execution, event, webhooks),
            Ok(_) => return self.leave_outbox(execution_id, sequence, webhook_id).await, // deleted since
            Err(error) => {
                tracing::warn!(%execution_id, sequence, ?error, "webhook delivery not loaded");
                return;
            }
        };
        let targets = webhooks.iter().filter(|w| match webhook_id {
            Some(id) => w.id == id,
            None => w.events.contains(&event.kind),
        });
        let deliveries = targets.map(|w| self.attempt(w, &execution, &event, attempt));
        futures::future::join_all(deliveries).await;
        self.leave_outbox(execution_id, sequence, webhook_id).await;
    }

    /// Once an event's first delivery round is done (each attempt stored, each retry
    /// queued), it leaves the outbox; a retry of one webhook (`webhook_id`) has no
    /// row there.
    async fn leave_outbox(&self, execution_id: &str, sequence: i64, webhook_id: Option<&str>) {
        if webhook_id.is_some() {
            return;
        }
        if let Err(error) = self.store().delivered(execution_id, sequence).await {
            tracing::warn!(%execution_id, sequence, ?error, "webhook outbox row kept; delivered again later");
        }
    }

    /// One attempt to one webhook: POST, store the outcome, queue the next attempt.
    async fn attempt(&self, webhook: &Webhook, execution: &Execution, event: &Event, attempt: i32) {
        let started = Instant::now();
        let outcome = self.post(webhook, execution, event).await;
        let ok = outcome.as_ref().is_ok_and(|status| status.is_success());
        let delivery = WebhookDelivery {
            id: new_id(),
            event: event.kind,
            sequence: event.sequence,
            attempt,
            status_code: outcome.as_ref().ok().map(|s| i32::from(s.as_u16())),
            ok,
            error: match &outcome {
                Ok(status) if !ok => Some(format!("answered {status}")),
                Ok(_) => None,
                Err(error) => Some(error.clone()),
            },
            delivered_at: clock::now(),
            duration_ms: started.elapsed().as_millis() as i64,
        };
        tracing::debug!(webhook = %webhook.id, sequence = event.sequence, attempt, ok, "webhook attempt");
        if let Err(error) = self.store().record_delivery(&webhook.id, &delivery).await {
            tracing::warn!(webhook = %webhook.id, ?error, "webhook delivery not recorded");
        }
        if !ok && attempt <= webhook.retries {
            let retry = Job::Webhook {
                execution_id: execution.id.clone(),
                sequence: event.sequence,
                webhook_id: Some(webhook.id.clone()),
                attempt: attempt + 1,
            };
            self.0
                .queue
                .push_or_warn(vec![(retry, backoff(attempt))])
                .await;
        }
    }

    /// POSTs the event; the status the receiver answered, or why there was none.
    async fn post(
        &self,
        webhook: &Webhook,
        execution: &Execution,
        event: &Event,
    ) -> Result<reqwest::StatusCode, String> {
        let url = reqwest::Url::parse(&webhook.url).map_err(|e| format!("bad URL: {e}"))?;
        let body = payload(event, execution).to_string();
        let timestamp = Utc::now().timestamp();
        let request = self.0.webhook_http.post(url).map_err(|e| e.to_string())?;
        let mut request = request.timeout(Duration::from_millis(webhook.timeout_ms.max(1) as u64));
        if let Some(Value::Object(headers)) = &webhook.headers {
            for (name, value) in headers {
                if let Some(value) = value.as_str()
                    && !name.to_ascii_lowercase().starts_with("x-exechub-")
                {
                    request = request.header(name, value);
                }
            }
        }
        request = request
            .header(CONTENT_TYPE, "application/json")
            .header("X-Exechub-Event", event_name(event.kind))
            .header(
                "X-Exechub-Delivery",
                format!("{}-{}", webhook.id, event.sequence),
            )
            .header("X-Exechub-Timestamp", timestamp.to_string());
        if let Some(secret) = &webhook.secret {
            request = request.header(
                "X-Exechub-Signature",
                signature(&secret.0, timestamp, &body),
            );
        }
        let sent = request.body(body).send().await;
        let response = sent.map_err(|e| egress::describe(&e))?;
        Ok(response.status())
    }
}
