//! The first rows of each of many executions in one query: an execution's events
//! after a sequence, or a page of its logs, for every execution of a list at once
//! (`ROW_NUMBER()` over each execution's rows; both backends have window functions).

use std::collections::HashMap;

use sea_orm::sea_query::{Alias, Asterisk, Expr, ExprTrait, Order, Query, WindowStatement};
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, FromQueryResult, QueryFilter, QueryTrait, Select,
};

use super::Store;
use super::entities::{event, log};
use super::mapping::{event_from_row, log_from_row};
use super::reads::{grouped, log_selection};
use crate::domain::records::{Event, LogEntry};
use crate::domain::values::LogLevel;
use crate::error::AppResult;

/// Which events of each execution: those after `after_sequence`, at most `first`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct EventWindow {
    pub after_sequence: i64,
    pub first: u64,
}

/// Which logs of each execution: of these levels and this step (when given), after
/// the log `after_id`, at most `first`, oldest first.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct LogWindow {
    pub levels: Option<Vec<LogLevel>>,
    pub step_id: Option<String>,
    pub first: u64,
    pub after_id: Option<String>,
}

/// One page of logs, oldest first.
#[derive(Clone, Debug, Default)]
pub struct LogPage {
    pub logs: Vec<LogEntry>,
    pub has_next_page: bool,
}

/// The first `limit` rows of `select` for each execution in the order of `by`.
async fn first_per_execution<E>(
    conn: &impl ConnectionTrait,
    select: Select<E>,
    execution_id: E::Column,
    by: E::Column,
    limit: u64,
) -> AppResult<Vec<E::Model>>
where
    E: EntityTrait,
    E::Model: FromQueryResult,
{
    let rank = Alias::new("rank_in_execution");
    let mut ranked = select.into_query();
    ranked.expr_window_as(
        Expr::cust("ROW_NUMBER()"),
        WindowStatement::partition_by(execution_id)
            .order_by(by, Order::Asc)
            .to_owned(),
        rank.clone(),
    );
    let firsts = Query::select()
        .column(Asterisk)
        .from_subquery(ranked, Alias::new("ranked"))
        .and_where(Expr::col(rank.clone()).lte(limit))
        .order_by(execution_id, Order::Asc)
        .order_by(rank, Order::Asc)
        .to_owned();
    let statement = conn.get_database_backend().build(&firsts);
    Ok(E::find().from_raw_sql(statement).all(conn).await?)
}

impl Store {
    pub async fn events_of(
        &self,
        ids: &[String],
        window: &EventWindow,
    ) -> AppResult<HashMap<String, Vec<Event>>> {
        let select = event::Entity::find()
            .filter(event::Column::ExecutionId.is_in(ids.iter().map(String::as_str)))
            .filter(event::Column::Sequence.gt(window.after_sequence));
        let rows = first_per_execution(
            &self.db,
            select,
            event::Column::ExecutionId,
            event::Column::Sequence,
            window.first,
        )
        .await?;
        grouped(
            rows.into_iter()
                .map(|row| Ok((row.execution_id.clone(), event_from_row(row)?))),
        )
    }

    pub async fn logs_of(
        &self,
        ids: &[String],
        window: &LogWindow,
    ) -> AppResult<HashMap<String, LogPage>> {
        let mut select = log_selection(ids, window.levels.as_deref(), window.step_id.as_deref());
        if let Some(after) = &window.after_id {
            select = select.filter(log::Column::Id.gt(after.as_str()));
        }
        // One more than a page tells whether there is a next page.
        let rows = first_per_execution(
            &self.db,
            select,
            log::Column::ExecutionId,
            log::Column::Id,
            window.first + 1,
        )
        .await?;
        let mut found: HashMap<String, LogPage> = HashMap::new();
        for row in rows {
            let page = found.entry(row.execution_id.clone()).or_default();
            if page.logs.len() as u64 == window.first {
                page.has_next_page = true;
            } else {
                page.logs.push(log_from_row(row)?);
            }
        }
        Ok(found)
    }
}
