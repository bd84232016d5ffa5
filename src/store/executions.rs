//! Listing executions: a parsed filter and page request as one keyset query in the
//! caller's tenant scope (ties broken by id), each row with its cursor, and the
//! total count when it is asked for.

use sea_orm::sea_query::{Expr, ExprTrait, Func, SimpleExpr};
use sea_orm::{
    Condition, EntityTrait, Order, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Value,
};
use serde_json::Value as Json;

use super::Store;
use super::entities::{execution, execution::Column};
use super::filters::{col, condition};
use super::mapping::execution_from_row;
use super::scope;
use crate::auth::Principal;
use crate::domain::filter::{ExecutionSortField, SortDirection};
use crate::domain::paging::{self, KeyValue, PageRequest, SortKey};
use crate::domain::query::Filter;
use crate::domain::records::Execution;
use crate::error::AppResult;

pub struct Page {
    pub items: Vec<(String, Execution)>,
    pub has_next_page: bool,
    pub has_previous_page: bool,
}

impl Store {
    pub async fn list_executions(
        &self,
        principal: &Principal,
        filter: &Filter,
        page: PageRequest,
    ) -> AppResult<Page> {
        let forward = page.forward();
        let mut query = execution::Entity::find()
            .filter(scope::condition(&principal.scope()))
            .filter(condition(filter));
        if let Some(values) = page.after() {
            query = query.filter(after_condition(page.keys(), values, forward));
        }
        for key in page.keys() {
            let ascending = (key.direction == SortDirection::Asc) == forward;
            query = query.order_by(
                sort_expr(key.field),
                if ascending { Order::Asc } else { Order::Desc },
            );
        }
        let size = page.size();
        let mut rows = query.limit(size + 1).all(&self.db).await?;
        let more = rows.len() as u64 > size;
        rows.truncate(size as usize);
        if !forward {
            rows.reverse();
        }
        let items = rows
            .into_iter()
            .map(|row| {
                let cursor = cursor(page.keys(), &row);
                execution_from_row(row).map(|e| (cursor, e))
            })
            .collect::<AppResult<Vec<_>>>()?;
        Ok(Page {
            items,
            has_next_page: if forward {
                more
            } else {
                page.after().is_some()
            },
            has_previous_page: if forward {
                page.after().is_some()
            } else {
                more
            },
        })
    }

    pub async fn count_executions(&self, principal: &Principal, filter: &Filter) -> AppResult<u64> {
        Ok(execution::Entity::find()
            .filter(scope::condition(&principal.scope()))
            .filter(condition(filter))
            .count(&self.db)
            .await?)
    }
}

// ------------------------------------------------------------------ ordering and cursors

/// A sort key's column; nullable ones sort as if NULL were below every value
/// (`COALESCE(col, -1)`), as their cursors say.
fn sort_expr(field: Option<ExecutionSortField>) -> SimpleExpr {
    use ExecutionSortField as F;
    let nullable = |c: Column| Expr::expr(Func::coalesce([col(c), Expr::val(-1)]));
    match field {
        None => col(Column::Id),
        Some(F::CreatedAt) => col(Column::CreatedAt),
        Some(F::UpdatedAt) => col(Column::UpdatedAt),
        Some(F::StartedAt) => nullable(Column::StartedAt),
        Some(F::CompletedAt) => nullable(Column::CompletedAt),
        Some(F::Priority) => col(Column::Priority),
        Some(F::Progress) => col(Column::Progress),
        Some(F::Duration) => nullable(Column::DurationMs),
        Some(F::Cost) => nullable(Column::Cost),
        Some(F::Status) => col(Column::Status),
    }
}

fn row_value(field: Option<ExecutionSortField>, row: &execution::Model) -> Json {
    use ExecutionSortField as F;
    match field {
        None => Json::from(row.id.clone()),
        Some(F::CreatedAt) => row.created_at.into(),
        Some(F::UpdatedAt) => row.updated_at.into(),
        Some(F::StartedAt) => row.started_at.unwrap_or(-1).into(),
        Some(F::CompletedAt) => row.completed_at.unwrap_or(-1).into(),
        Some(F::Priority) => i64::from(row.priority).into(),
        Some(F::Progress) => row.progress.into(),
        Some(F::Duration) => row.duration_ms.unwrap_or(-1).into(),
        Some(F::Cost) => row.cost.unwrap_or(-1.0).into(),
        Some(F::Status) => row.status.clone().into(),
    }
}

fn cursor(keys: &[SortKey], row: &execution::Model) -> String {
    paging::encode(keys, keys.iter().map(|k| row_value(k.field, row)).collect())
}

fn sql_value(value: &KeyValue) -> Value {
    match value {
        KeyValue::Int(v) => Value::from(*v),
        KeyValue::Float(v) => Value::from(*v),
        KeyValue::Text(v) => Value::from(v.clone()),
    }
}

/// Rows strictly after the cursor in the (possibly reversed) ordering:
/// `k1 > v1 OR (k1 = v1 AND k2 > v2) OR …`.
fn after_condition(keys: &[SortKey], values: &[KeyValue], forward: bool) -> Condition {
    let mut any = Condition::any();
    for i in 0..keys.len() {
        let mut all = Condition::all();
        for j in 0..i {
            all = all.add(sort_expr(keys[j].field).eq(sql_value(&values[j])));
        }
        let ascending = (keys[i].direction == SortDirection::Asc) == forward;
        let (expr, value) = (sort_expr(keys[i].field), sql_value(&values[i]));
        let beyond = if ascending {
            expr.gt(value)
        } else {
            expr.lt(value)
        };
        any = any.add(all.add(beyond));
    }
    any
}
