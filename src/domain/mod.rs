//! The rules of the service, with no I/O: statuses and their transition table, the
//! records and value types, input limits, and the commands that turn a request into a
//! `Change`. Everything here is testable without a database.

pub mod aging;
pub mod analytics;
pub mod change;
pub mod claim;
pub mod clock;
pub mod failure;
pub mod filter;
pub mod inputs;
pub mod lifecycle;
pub mod limits;
pub mod metrics;
pub mod paging;
pub mod progress;
pub mod query;
pub mod records;
pub mod recurring;
pub mod retry;
pub mod sample;
pub mod schedule;
pub mod snapshot;
pub mod status;
pub mod step_graph;
pub mod steps;
#[cfg(test)]
pub mod testing;
pub mod validate;
pub mod values;
pub mod webhooks;
