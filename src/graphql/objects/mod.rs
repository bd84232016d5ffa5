//! GraphQL output types that are not plain value types: the execution, the records
//! around it, connections, and the `Node` interface.

pub mod connection;
pub mod execution;
pub mod flow_control;
pub mod records;
pub mod schedules;

use async_graphql::{ID, Interface};

use crate::domain::records::Execution;

#[derive(Interface)]
#[graphql(field(name = "id", ty = "ID"))]
pub enum Node {
    Execution(Execution),
}
