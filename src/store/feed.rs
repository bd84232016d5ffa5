//! Reads for the live feed: which of some executions a caller may see and its filter
//! matches (the filter language stays SQL, as for lists), and the events of all such
//! executions since a time, for a feed subscriber that fell behind the bus.

use std::collections::HashSet;

use sea_orm::sea_query::Query;
use sea_orm::{ColumnTrait, Condition, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

use super::Store;
use super::entities::{event, execution};
use super::filters::condition;
use super::mapping::{event_from_row, to_ms};
use super::scope;
use crate::auth::Principal;
use crate::domain::query::Filter;
use crate::domain::records::{Event, Timestamp};
use crate::error::AppResult;

fn visible(principal: &Principal, filter: &Filter) -> Condition {
    Condition::all()
        .add(scope::condition(&principal.scope()))
        .add(condition(filter))
}

impl Store {
    /// The ids among `ids` of executions `principal` sees and `filter` matches.
    pub async fn matching(
        &self,
        principal: &Principal,
        filter: &Filter,
        ids: &[&str],
    ) -> AppResult<HashSet<String>> {
        let rows: Vec<String> = execution::Entity::find()
            .select_only()
            .column(execution::Column::Id)
            .filter(execution::Column::Id.is_in(ids.iter().copied()))
            .filter(visible(principal, filter))
            .into_tuple()
            .all(&self.db)
            .await?;
        Ok(rows.into_iter().collect())
    }

    /// Up to `limit` events since `since` of the executions `principal` sees and
    /// `filter` matches, oldest first.
    pub async fn events_since(
        &self,
        principal: &Principal,
        filter: &Filter,
        since: Timestamp,
        limit: u64,
    ) -> AppResult<Vec<Event>> {
        let executions = Query::select()
            .column(execution::Column::Id)
            .from(execution::Entity)
            .cond_where(visible(principal, filter))
            .to_owned();
        event::Entity::find()
            .filter(event::Column::Timestamp.gte(to_ms(since)))
            .filter(event::Column::ExecutionId.in_subquery(executions))
            .order_by_asc(event::Column::Timestamp)
            .order_by_asc(event::Column::ExecutionId)
            .order_by_asc(event::Column::Sequence)
            .limit(limit)
            .all(&self.db)
            .await?
            .into_iter()
            .map(event_from_row)
            .collect()
    }
}
