//! Listing executions: the filter (`filters`), the caller's tenant scope, keyset
//! pagination over any `orderBy` (ties broken by id) with opaque cursors, and the
//! total count when it is asked for.

use base64::Engine;
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
use crate::domain::filter::*;
use crate::domain::records::Execution;
use crate::domain::validate;
use crate::error::{AppError, AppResult};

/// Which slice of the ordered list a request wants.
pub struct PageRequest {
    pub first: Option<i32>,
    pub after: Option<String>,
    pub last: Option<i32>,
    pub before: Option<String>,
}

pub struct Page {
    pub items: Vec<(String, Execution)>,
    pub has_next_page: bool,
    pub has_previous_page: bool,
}

const DEFAULT_PAGE: i32 = 50;

impl Store {
    pub async fn list_executions(
        &self,
        principal: &Principal,
        filter: Option<&ExecutionFilter>,
        order: &[ExecutionOrder],
        page: PageRequest,
    ) -> AppResult<Page> {
        let keys = sort_keys(order);
        let (forward, size, cursor) = match (page.first, page.last) {
            (Some(_), Some(_)) => {
                return Err(AppError::bad_input(
                    "first",
                    "give `first` or `last`, not both",
                ));
            }
            (_, Some(last)) => (
                false,
                validate::limit("last", Some(last), 0, 0, MAX_PAGE)?,
                page.before,
            ),
            (first, None) => (
                true,
                validate::limit("first", first, DEFAULT_PAGE, 0, MAX_PAGE)?,
                page.after,
            ),
        };
        let mut query = execution::Entity::find()
            .filter(scope::condition(&principal.scope()))
            .filter(condition(filter)?);
        if let Some(cursor) = &cursor {
            let values = decode_cursor(cursor, &keys)?;
            query = query.filter(after_condition(&keys, &values, forward));
        }
        for key in &keys {
            let ascending = (key.direction == SortDirection::Asc) == forward;
            query = query.order_by(
                key.expr.clone(),
                if ascending { Order::Asc } else { Order::Desc },
            );
        }
        let mut rows = query.limit(size + 1).all(&self.db).await?;
        let more = rows.len() as u64 > size;
        rows.truncate(size as usize);
        if !forward {
            rows.reverse();
        }
        let items = rows
            .into_iter()
            .map(|row| {
                let cursor = encode_cursor(&keys, &row);
                execution_from_row(row).map(|e| (cursor, e))
            })
            .collect::<AppResult<Vec<_>>>()?;
        Ok(Page {
            items,
            has_next_page: if forward { more } else { cursor.is_some() },
            has_previous_page: if forward { cursor.is_some() } else { more },
        })
    }

    pub async fn count_executions(
        &self,
        principal: &Principal,
        filter: Option<&ExecutionFilter>,
    ) -> AppResult<u64> {
        Ok(execution::Entity::find()
            .filter(scope::condition(&principal.scope()))
            .filter(condition(filter)?)
            .count(&self.db)
            .await?)
    }
}

// ------------------------------------------------------------------ ordering and cursors

#[derive(Copy, Clone, PartialEq)]
enum Kind {
    Int,
    Float,
    Text,
}

struct SortKey {
    field: Option<ExecutionSortField>,
    expr: SimpleExpr,
    kind: Kind,
    direction: SortDirection,
}

/// Nullable columns sort as if NULL were below every value (`COALESCE(col, -1)`).
fn sort_key(field: ExecutionSortField, direction: SortDirection) -> SortKey {
    use ExecutionSortField as F;
    let nullable = |c: Column| Expr::expr(Func::coalesce([col(c), Expr::val(-1)]));
    let (expr, kind) = match field {
        F::CreatedAt => (col(Column::CreatedAt), Kind::Int),
        F::UpdatedAt => (col(Column::UpdatedAt), Kind::Int),
        F::StartedAt => (nullable(Column::StartedAt), Kind::Int),
        F::CompletedAt => (nullable(Column::CompletedAt), Kind::Int),
        F::Priority => (col(Column::Priority), Kind::Int),
        F::Progress => (col(Column::Progress), Kind::Float),
        F::Duration => (nullable(Column::DurationMs), Kind::Int),
        F::Cost => (nullable(Column::Cost), Kind::Float),
        F::Status => (col(Column::Status), Kind::Text),
    };
    SortKey {
        field: Some(field),
        expr,
        kind,
        direction,
    }
}

fn sort_keys(order: &[ExecutionOrder]) -> Vec<SortKey> {
    let mut keys: Vec<SortKey> = order
        .iter()
        .map(|o| sort_key(o.field, o.direction))
        .collect();
    if keys.is_empty() {
        keys.push(sort_key(ExecutionSortField::CreatedAt, SortDirection::Desc));
    }
    let direction = keys[0].direction;
    keys.push(SortKey {
        field: None,
        expr: col(Column::Id),
        kind: Kind::Text,
        direction,
    });
    keys
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

fn encode_cursor(keys: &[SortKey], row: &execution::Model) -> String {
    let values: Vec<Json> = keys.iter().map(|k| row_value(k.field, row)).collect();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Json::Array(values).to_string())
}

fn decode_cursor(cursor: &str, keys: &[SortKey]) -> AppResult<Vec<Value>> {
    let bad = || AppError::bad_input("after", "not a cursor of this ordering");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .map_err(|_| bad())?;
    let values: Vec<Json> = serde_json::from_slice(&bytes).map_err(|_| bad())?;
    if values.len() != keys.len() {
        return Err(bad());
    }
    keys.iter()
        .zip(values)
        .map(|(key, value)| match key.kind {
            Kind::Int => value.as_i64().map(Value::from).ok_or_else(bad),
            Kind::Float => value.as_f64().map(Value::from).ok_or_else(bad),
            Kind::Text => value
                .as_str()
                .map(|s| Value::from(s.to_owned()))
                .ok_or_else(bad),
        })
        .collect()
}

/// Rows strictly after the cursor in the (possibly reversed) ordering:
/// `k1 > v1 OR (k1 = v1 AND k2 > v2) OR …`.
fn after_condition(keys: &[SortKey], values: &[Value], forward: bool) -> Condition {
    let mut any = Condition::any();
    for i in 0..keys.len() {
        let mut all = Condition::all();
        for j in 0..i {
            all = all.add(keys[j].expr.clone().eq(values[j].clone()));
        }
        let ascending = (keys[i].direction == SortDirection::Asc) == forward;
        let beyond = if ascending {
            keys[i].expr.clone().gt(values[i].clone())
        } else {
            keys[i].expr.clone().lt(values[i].clone())
        };
        any = any.add(all.add(beyond));
    }
    any
}
