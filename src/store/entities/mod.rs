//! sea-orm entities, one per table of the `migration` crate. Only `store` uses them.

pub mod audit;
pub mod checkpoint;
pub mod event;
pub mod execution;
pub mod execution_tag;
pub mod idempotency_key;
pub mod limit;
pub mod limit_usage;
pub mod log;
pub mod schedule;
pub mod step;
pub mod webhook;
pub mod webhook_delivery;
pub mod webhook_outbox;
