//! The records of the service as the rules see them: an execution, its steps, logs,
//! checkpoints, events and webhooks. `store` loads and saves exactly these; the
//! GraphQL layer shows them. The JSON of what events carry (stored payloads, messages
//! to other processes) leaves absent fields out: most of a step's are.

use async_graphql::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_with::skip_serializing_none;

use super::status::{ExecutionStatus, StepStatus};
use super::values::*;

pub type Timestamp = DateTime<Utc>;

#[derive(Clone, Debug, PartialEq)]
pub struct Execution {
    pub id: String,
    pub order_id: String,
    pub service_id: String,
    pub customer_id: Option<String>,
    pub provider_id: Option<String>,
    pub status: ExecutionStatus,
    pub progress: f64,
    /// Set once a client reports progress itself; steps no longer drive it then.
    pub progress_explicit: bool,
    pub priority: Priority,
    pub assignee: Option<Assignee>,
    pub result: Option<ExecutionResult>,
    pub error: Option<ExecutionError>,
    pub metrics: Metrics,
    pub timeout_ms: i64,
    pub retry_policy: Option<RetryPolicy>,
    pub tags: Vec<String>,
    pub environment: Option<String>,
    pub version: Option<String>,
    pub metadata: Option<Value>,
    /// A key every step of the execution counts against (`domain::limits`).
    pub concurrency_key: Option<String>,
    /// The keys with a limit on executions whose slots this one holds, from its
    /// start until it settles.
    pub holds: Vec<String>,
    /// What a QUEUED execution waits on before it may start: `executions <key>`.
    pub waiting_on: Option<String>,
    /// The most it may spend (`domain::limits::budget`).
    pub budget: Option<super::limits::budget::Budget>,
    /// Sequence of the newest event; the next event gets `last_sequence + 1`.
    pub last_sequence: i64,
    pub paused_at: Option<Timestamp>,
    pub paused_ms: i64,
    /// When a FAILED execution that will retry is due to run again.
    pub retry_at: Option<Timestamp>,
    /// When an execution created with `startAt` starts itself (kept once it has).
    pub scheduled_at: Option<Timestamp>,
    /// The schedule that created it, if one did.
    pub schedule_id: Option<String>,
    /// The event types any of its webhooks wants (`webhooks::watched`).
    pub webhook_events: Vec<EventType>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl Execution {
    /// Whether the execution is where `Event::settles_execution` leaves it.
    pub fn is_settled(&self) -> bool {
        self.status.is_terminal()
            || (self.status == ExecutionStatus::Failed && self.retry_at.is_none())
    }
}

#[skip_serializing_none]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Step {
    pub id: String,
    pub name: String,
    pub index: i32,
    pub status: StepStatus,
    pub depends_on: Vec<String>,
    pub handler: StepHandler,
    pub assignee: Option<Assignee>,
    pub input: Option<Json<Value>>,
    pub output: Option<Json<Value>>,
    pub error: Option<ExecutionError>,
    pub started_at: Option<Timestamp>,
    pub completed_at: Option<Timestamp>,
    pub duration_ms: Option<i64>,
    pub timeout_ms: Option<i64>,
    pub retries: i32,
    /// Fencing token: bumped every time the step is (re)started.
    pub attempt: i32,
    pub metadata: Option<Json<Value>>,
    /// A key the step counts against besides its execution's (`domain::limits`).
    pub concurrency_key: Option<String>,
    pub schedule: StepSchedule,
}

/// The scheduler's hold on a step: when it was handed out (queued for a worker or
/// offered to claimers; also where its wait for priority aging starts), and the lease
/// of the attempt running it.
#[skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct StepSchedule {
    pub ready_at: Option<Timestamp>,
    pub lease_expires_at: Option<Timestamp>,
    /// The worker running the attempt, or the nonce of an external claim.
    pub lease_owner: Option<String>,
    /// The limited keys whose slots the running attempt holds (`domain::limits`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub holds: Vec<String>,
    /// What a handed-out step waits on before it may start: `concurrency <key>` or
    /// `rate <key>`.
    pub waiting_on: Option<String>,
    /// For a rate: the start reserved for the step.
    pub waiting_until: Option<Timestamp>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LogEntry {
    pub id: String,
    pub timestamp: Timestamp,
    pub level: LogLevel,
    pub message: String,
    pub step: Option<String>,
    pub context: Option<Json<Value>>,
    pub metadata: Option<Json<Value>>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub id: String,
    pub timestamp: Timestamp,
    pub step: Option<String>,
    pub state: Json<Value>,
    pub metadata: Option<Json<Value>>,
}

/// What an event carries besides its type and the execution's status and progress.
#[skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct EventPayload {
    pub step: Option<Step>,
    pub log: Option<LogEntry>,
    pub checkpoint: Option<Checkpoint>,
    pub error: Option<ExecutionError>,
    pub result: Option<ExecutionResult>,
    pub will_retry: Option<bool>,
    pub next_retry_at: Option<Timestamp>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub id: String,
    pub execution_id: String,
    pub sequence: i64,
    pub kind: EventType,
    pub timestamp: Timestamp,
    pub status: ExecutionStatus,
    pub progress: f64,
    /// Boxed: most events carry little, and live streams hold events while idle.
    pub payload: Box<EventPayload>,
    pub actor: Option<String>,
    pub reason: Option<String>,
}

impl Event {
    /// Whether nothing more will happen to the execution after this event unless a
    /// client acts again: it COMPLETED, was CANCELLED, or FAILED with no retry
    /// scheduled. A stream of one execution's events ends here.
    pub fn settles_execution(&self) -> bool {
        match self.kind {
            EventType::ExecutionCompleted | EventType::ExecutionCancelled => true,
            EventType::ExecutionFailed => self.payload.will_retry != Some(true),
            _ => false,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Webhook {
    pub id: String,
    pub execution_id: String,
    pub url: String,
    pub events: Vec<EventType>,
    pub headers: Option<Value>,
    /// Signing secret: stored, never shown (nor logged: see `Secret`).
    pub secret: Option<Secret>,
    pub retries: i32,
    pub timeout_ms: i64,
    pub created_at: Timestamp,
}

#[derive(Clone, Debug, PartialEq)]
pub struct WebhookDelivery {
    pub id: String,
    pub event: EventType,
    pub sequence: i64,
    pub attempt: i32,
    pub status_code: Option<i32>,
    pub ok: bool,
    pub error: Option<String>,
    pub delivered_at: Timestamp,
    pub duration_ms: i64,
}

/// A webhook's signing secret; `Debug` does not print it.
#[derive(Clone, PartialEq)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(…)")
    }
}

/// A new time-ordered id (UUID v7) for any record.
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}
