//! The query language over executions as clients send it: the contract's filter,
//! ordering and paging inputs. `query` and `paging` parse them; `store::filters`
//! turns a parsed filter into one SQL condition, so nothing is filtered in Rust.

use async_graphql::{Enum, ID, InputObject};
use chrono::{DateTime, Utc};

use super::status::ExecutionStatus;
use super::values::{AssigneeType, Priority};

#[derive(InputObject, Clone, Debug, Default)]
#[graphql(name = "IDFilter")]
pub struct IdFilter {
    pub eq: Option<ID>,
    pub ne: Option<ID>,
    #[graphql(name = "in")]
    pub in_: Option<Vec<ID>>,
    pub not_in: Option<Vec<ID>>,
    pub is_null: Option<bool>,
}

#[derive(InputObject, Clone, Debug, Default)]
pub struct StringFilter {
    pub eq: Option<String>,
    pub ne: Option<String>,
    #[graphql(name = "in")]
    pub in_: Option<Vec<String>>,
    pub not_in: Option<Vec<String>>,
    /// Case-insensitive substring.
    pub contains: Option<String>,
    /// Case-insensitive prefix.
    pub starts_with: Option<String>,
    pub is_null: Option<bool>,
}

#[derive(InputObject, Clone, Debug, Default)]
pub struct IntFilter {
    pub eq: Option<i64>,
    pub ne: Option<i64>,
    pub gt: Option<i64>,
    pub gte: Option<i64>,
    pub lt: Option<i64>,
    pub lte: Option<i64>,
    pub is_null: Option<bool>,
}

#[derive(InputObject, Clone, Debug, Default)]
pub struct FloatFilter {
    pub eq: Option<f64>,
    pub ne: Option<f64>,
    pub gt: Option<f64>,
    pub gte: Option<f64>,
    pub lt: Option<f64>,
    pub lte: Option<f64>,
    pub is_null: Option<bool>,
}

#[derive(InputObject, Clone, Debug, Default)]
pub struct DateTimeFilter {
    pub gt: Option<DateTime<Utc>>,
    pub gte: Option<DateTime<Utc>>,
    pub lt: Option<DateTime<Utc>>,
    pub lte: Option<DateTime<Utc>>,
    pub is_null: Option<bool>,
}

#[derive(InputObject, Clone, Debug, Default)]
pub struct StatusFilter {
    pub eq: Option<ExecutionStatus>,
    pub ne: Option<ExecutionStatus>,
    #[graphql(name = "in")]
    pub in_: Option<Vec<ExecutionStatus>>,
    pub not_in: Option<Vec<ExecutionStatus>>,
}

#[derive(InputObject, Clone, Debug, Default)]
pub struct PriorityFilter {
    pub eq: Option<Priority>,
    pub ne: Option<Priority>,
    #[graphql(name = "in")]
    pub in_: Option<Vec<Priority>>,
    pub not_in: Option<Vec<Priority>>,
    pub gte: Option<Priority>,
    pub lte: Option<Priority>,
}

#[derive(InputObject, Clone, Debug, Default)]
pub struct AssigneeTypeFilter {
    pub eq: Option<AssigneeType>,
    #[graphql(name = "in")]
    pub in_: Option<Vec<AssigneeType>>,
    pub not_in: Option<Vec<AssigneeType>>,
    pub is_null: Option<bool>,
}

#[derive(InputObject, Clone, Debug, Default)]
pub struct TagsFilter {
    pub has_all: Option<Vec<String>>,
    pub has_any: Option<Vec<String>>,
    pub has_none: Option<Vec<String>>,
}

/// Every field narrows; `and`/`or`/`not` compose.
#[derive(InputObject, Clone, Debug, Default)]
pub struct ExecutionFilter {
    pub id: Option<IdFilter>,
    pub order_id: Option<IdFilter>,
    pub service_id: Option<IdFilter>,
    pub customer_id: Option<IdFilter>,
    pub provider_id: Option<IdFilter>,
    /// The schedule whose fires created them.
    pub schedule_id: Option<IdFilter>,
    pub status: Option<StatusFilter>,
    pub priority: Option<PriorityFilter>,
    pub assignee_type: Option<AssigneeTypeFilter>,
    pub assignee_id: Option<IdFilter>,
    pub assignee_model: Option<StringFilter>,
    pub tags: Option<TagsFilter>,
    pub progress: Option<FloatFilter>,
    pub duration_ms: Option<IntFilter>,
    pub cost: Option<FloatFilter>,
    pub tokens_used: Option<IntFilter>,
    pub retries: Option<IntFilter>,
    pub error_code: Option<StringFilter>,
    pub error_recoverable: Option<bool>,
    pub environment: Option<StringFilter>,
    pub created_at: Option<DateTimeFilter>,
    pub updated_at: Option<DateTimeFilter>,
    pub started_at: Option<DateTimeFilter>,
    pub completed_at: Option<DateTimeFilter>,
    /// When an execution created with `startAt` starts itself.
    pub scheduled_at: Option<DateTimeFilter>,
    /// Case-insensitive substring of the order id, service id, result summary, error
    /// message or step names.
    pub search: Option<String>,
    pub and: Option<Vec<ExecutionFilter>>,
    pub or: Option<Vec<ExecutionFilter>>,
    pub not: Option<Box<ExecutionFilter>>,
}

#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum ExecutionSortField {
    CreatedAt,
    UpdatedAt,
    StartedAt,
    CompletedAt,
    Priority,
    Progress,
    Duration,
    Cost,
    Status,
}

#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum SortDirection {
    Asc,
    Desc,
}

#[derive(InputObject, Clone, Debug)]
pub struct ExecutionOrder {
    pub field: ExecutionSortField,
    #[graphql(default_with = "SortDirection::Desc")]
    pub direction: SortDirection,
}

/// Filters nest at most this deep through `and`/`or`/`not`.
pub const MAX_FILTER_DEPTH: usize = 8;
/// Values one filter may name in all (ids, strings, numbers, tags).
pub const MAX_FILTER_VALUES: usize = 1000;
/// Branches of one `and` or `or`, and tags of one `hasAll`.
pub const MAX_FILTER_BRANCHES: usize = 100;
/// `first` and `last` are at most this.
pub const MAX_PAGE: i32 = 500;
