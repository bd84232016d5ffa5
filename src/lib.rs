//! exechub: tracks and runs service executions (long-running jobs made of steps) and
//! serves them over GraphQL. `app` is the composition root used by the binary and by
//! the tests.

pub mod app;
pub mod auth;
pub mod batcher;
pub mod clock;
pub mod config;
pub mod domain;
pub mod error;
pub mod events;
pub mod graphql;
pub mod http;
pub mod scheduler;
pub mod service;
pub mod store;
pub mod telemetry;
