//! Relay connections: executions and logs, with `pageInfo` and a `totalCount` that
//! is counted in SQL only when the client selects it.

use async_graphql::{Context, Object, Result, SimpleObject};

use crate::auth::Principal;
use crate::domain::paging;
use crate::domain::query::Filter;
use crate::domain::records::{Execution, LogEntry};
use crate::domain::values::LogLevel;

use crate::graphql::context::store;
use crate::graphql::errors::GqlResult;

#[derive(SimpleObject, Clone, Debug)]
pub struct PageInfo {
    pub has_next_page: bool,
    pub has_previous_page: bool,
    pub start_cursor: Option<String>,
    pub end_cursor: Option<String>,
}

#[derive(SimpleObject)]
pub struct ExecutionEdge {
    pub cursor: String,
    pub node: Execution,
}

pub struct ExecutionConnection {
    pub principal: Principal,
    pub filter: Filter,
    pub edges: Vec<(String, Execution)>,
    pub has_next_page: bool,
    pub has_previous_page: bool,
}

#[Object]
impl ExecutionConnection {
    async fn edges(&self) -> Vec<ExecutionEdge> {
        self.edges
            .iter()
            .map(|(cursor, node)| ExecutionEdge {
                cursor: cursor.clone(),
                node: node.clone(),
            })
            .collect()
    }
    async fn nodes(&self) -> Vec<&Execution> {
        self.edges.iter().map(|(_, node)| node).collect()
    }
    async fn page_info(&self) -> PageInfo {
        PageInfo {
            has_next_page: self.has_next_page,
            has_previous_page: self.has_previous_page,
            start_cursor: self.edges.first().map(|(c, _)| c.clone()),
            end_cursor: self.edges.last().map(|(c, _)| c.clone()),
        }
    }
    async fn total_count(&self, ctx: &Context<'_>) -> Result<u64> {
        store(ctx)
            .count_executions(&self.principal, &self.filter)
            .await
            .gql()
    }
}

#[derive(SimpleObject)]
pub struct LogEdge {
    pub cursor: String,
    pub node: LogEntry,
}

pub struct LogConnection {
    pub execution_id: String,
    pub levels: Option<Vec<LogLevel>>,
    pub step_id: Option<String>,
    pub logs: Vec<LogEntry>,
    pub has_next_page: bool,
    pub has_previous_page: bool,
}

#[Object]
impl LogConnection {
    async fn edges(&self) -> Vec<LogEdge> {
        self.logs
            .iter()
            .map(|log| LogEdge {
                cursor: paging::log_cursor(&log.id),
                node: log.clone(),
            })
            .collect()
    }
    async fn nodes(&self) -> &[LogEntry] {
        &self.logs
    }
    async fn page_info(&self) -> PageInfo {
        PageInfo {
            has_next_page: self.has_next_page,
            has_previous_page: self.has_previous_page,
            start_cursor: self.logs.first().map(|l| paging::log_cursor(&l.id)),
            end_cursor: self.logs.last().map(|l| paging::log_cursor(&l.id)),
        }
    }
    async fn total_count(&self, ctx: &Context<'_>) -> Result<u64> {
        store(ctx)
            .count_logs(
                &self.execution_id,
                self.levels.as_deref(),
                self.step_id.as_deref(),
            )
            .await
            .gql()
    }
}
