//! Step handlers: what a worker runs for each built-in step kind. `echo` returns its
//! input, `delay` sleeps `config.ms`, `http` POSTs the input to `config.url`
//! through the guarded client (`egress`), reading at most
//! `--http-step-max-response-bytes` of the answer. An `http` step is at least once
//! (a worker that dies mid-call leaves the step to run again), so every attempt of
//! one step sends the same `Idempotency-Key`, for the receiver to tell repeats.
//! Embedders add kinds by registering more `Handler`s. A handler is dropped (and so
//! interrupted) at its step's timeout, at a pause or cancel, or when its lease is lost.
//! `echo` and `delay` are contained (they call nothing outside), so they start while
//! their step's start commits; `http` waits for it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use serde_json::{Value, json};

use super::egress::{self, Egress};
use crate::domain::values::ExecutionError;

/// What a handler gets: the step's input and handler config.
pub struct StepCall {
    pub execution_id: String,
    pub step_id: String,
    pub attempt: i32,
    pub input: Option<Value>,
    pub config: Option<Value>,
}

pub type HandlerResult = Result<Option<Value>, ExecutionError>;

pub trait Handler: Send + Sync + 'static {
    fn run(&self, call: StepCall) -> BoxFuture<'static, HandlerResult>;

    /// Whether the handler acts only inside this process (it calls nothing outside),
    /// so that it may start while its step's start is still being committed: if the
    /// start is refused, the handler is interrupted and no one else saw it run.
    fn is_contained(&self) -> bool {
        false
    }
}

/// Handlers by step kind.
#[derive(Clone)]
pub struct Registry(HashMap<String, Arc<dyn Handler>>);

impl Registry {
    /// `echo`, `delay` and `http` (its client and the most of an answer it reads).
    pub fn built_in(http: Egress, max_response_bytes: usize) -> Self {
        let mut registry = Registry(HashMap::new());
        registry.register("echo", Echo);
        registry.register("delay", Delay);
        registry.register(
            "http",
            Http {
                client: http,
                max_response_bytes,
            },
        );
        registry
    }

    pub fn register(&mut self, kind: &str, handler: impl Handler) {
        self.0.insert(kind.to_owned(), Arc::new(handler));
    }

    pub fn get(&self, kind: &str) -> Option<Arc<dyn Handler>> {
        self.0.get(kind).cloned()
    }

    /// The kinds registered.
    pub fn kinds(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }
}

/// An `API_RATE_LIMIT` error; with the answer's `Retry-After` (seconds, or an HTTP
/// date), its context says how long to wait (`retryAfterMs`), which pauses the
/// step's rate-limited keys (`domain::limits::account`).
fn rate_limited(message: String, headers: &reqwest::header::HeaderMap) -> ExecutionError {
    let mut limited = error("API_RATE_LIMIT", message, true);
    let retry_after = headers
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok());
    let wait = retry_after.and_then(|value| {
        let value = value.trim();
        if let Ok(seconds) = value.parse::<u64>() {
            return Some(Duration::from_secs(seconds));
        }
        let at = httpdate::parse_http_date(value).ok()?;
        Some(
            at.duration_since(std::time::SystemTime::now())
                .unwrap_or_default(),
        )
    });
    if let Some(wait) = wait.filter(|w| *w <= Duration::from_secs(86_400)) {
        let context = serde_json::json!({ "retryAfterMs": wait.as_millis() as u64 });
        limited.context = Some(async_graphql::Json(context));
    }
    limited
}

/// An error of `code`, recoverable or not.
pub fn error(code: &str, message: impl Into<String>, recoverable: bool) -> ExecutionError {
    ExecutionError {
        code: code.into(),
        message: message.into(),
        stack: None,
        step: None,
        recoverable,
        retry_count: 0,
        context: None,
        timestamp: None,
    }
}

fn config_field<'a>(call: &'a StepCall, field: &str) -> Option<&'a Value> {
    call.config.as_ref().and_then(|c| c.get(field))
}

struct Echo;

impl Handler for Echo {
    fn run(&self, call: StepCall) -> BoxFuture<'static, HandlerResult> {
        Box::pin(async move { Ok(call.input) })
    }

    fn is_contained(&self) -> bool {
        true
    }
}

struct Delay;

impl Handler for Delay {
    fn run(&self, call: StepCall) -> BoxFuture<'static, HandlerResult> {
        let ms = config_field(&call, "ms").and_then(Value::as_u64);
        Box::pin(async move {
            let ms = ms.ok_or_else(|| {
                error("VALIDATION_ERROR", "a delay step needs `config.ms`", false)
            })?;
            tokio::time::sleep(Duration::from_millis(ms)).await;
            Ok(Some(json!({ "waitedMs": ms })))
        })
    }

    fn is_contained(&self) -> bool {
        true
    }
}

struct Http {
    client: Egress,
    max_response_bytes: usize,
}

/// The header that is the same for every attempt of one step.
pub const IDEMPOTENCY_KEY: &str = "Idempotency-Key";

impl Handler for Http {
    fn run(&self, call: StepCall) -> BoxFuture<'static, HandlerResult> {
        let client = self.client.clone();
        let max_bytes = self.max_response_bytes;
        let url = config_field(&call, "url")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let headers = config_field(&call, "headers")
            .and_then(Value::as_object)
            .cloned();
        let timeout = config_field(&call, "timeoutMs")
            .and_then(Value::as_u64)
            .unwrap_or(30_000);
        Box::pin(async move {
            let url = url.ok_or_else(|| {
                error("VALIDATION_ERROR", "an http step needs `config.url`", false)
            })?;
            let parsed = reqwest::Url::parse(&url)
                .map_err(|e| error("VALIDATION_ERROR", format!("`{url}`: {e}"), false))?;
            let request = client.post(parsed).map_err(|refused| {
                error("DESTINATION_REFUSED", format!("{url}: {refused}"), false)
            })?;
            let mut request = request
                .timeout(Duration::from_millis(timeout))
                .header("X-Exechub-Execution", &call.execution_id)
                .header("X-Exechub-Step", &call.step_id)
                .header("X-Exechub-Attempt", call.attempt.to_string())
                .header(
                    IDEMPOTENCY_KEY,
                    format!("{}/{}", call.execution_id, call.step_id),
                )
                .json(&call.input.unwrap_or(Value::Null));
            for (name, value) in headers.into_iter().flatten() {
                if let Some(value) = value.as_str() {
                    request = request.header(name, value);
                }
            }
            let mut response = request.send().await.map_err(|e| transport_error(&url, e))?;
            let status = response.status();
            if !status.is_success() {
                let message = format!("{url} answered {status}");
                return Err(match status.as_u16() {
                    429 => rate_limited(message, response.headers()),
                    500..=599 => error("API_ERROR", message, true),
                    _ => error("API_ERROR", message, false),
                });
            }
            let too_large = || {
                let message = format!("{url} answered more than {max_bytes} bytes");
                error("RESULT_TOO_LARGE", message, false)
            };
            if response
                .content_length()
                .is_some_and(|n| n > max_bytes as u64)
            {
                return Err(too_large());
            }
            let mut body = Vec::new();
            while let Some(chunk) = response
                .chunk()
                .await
                .map_err(|e| transport_error(&url, e))?
            {
                if body.len() + chunk.len() > max_bytes {
                    return Err(too_large());
                }
                body.extend_from_slice(&chunk);
            }
            if body.is_empty() {
                return Ok(None);
            }
            serde_json::from_slice(&body).map(Some).map_err(|e| {
                error(
                    "API_ERROR",
                    format!("{url} answered with invalid JSON: {e}"),
                    false,
                )
            })
        })
    }
}

fn transport_error(url: &str, e: reqwest::Error) -> ExecutionError {
    let described = egress::describe(&e);
    if egress::is_refused(&e) {
        error("DESTINATION_REFUSED", format!("{url}: {described}"), false)
    } else if e.is_timeout() {
        error("API_TIMEOUT", format!("{url} did not answer in time"), true)
    } else if e.is_connect() {
        error(
            "SERVICE_UNAVAILABLE",
            format!("{url} refused the connection: {described}"),
            true,
        )
    } else {
        error("API_ERROR", format!("{url}: {described}"), true)
    }
}
