//! The subscription root: the live events of one execution (all, progress and status,
//! steps) and the feed of every execution the caller may see. The same permission and
//! tenant rules as queries apply when a subscription starts; the streams themselves
//! are `events::streams`.

use async_graphql::{Context, ID, Result, Subscription};
use futures::{Stream, StreamExt};

use super::context::{caller, events, store};
use super::errors::{GqlResult, to_graphql};
use super::loaders;
use crate::auth::Permission;
use crate::domain::filter::ExecutionFilter;
use crate::domain::query::Filter;
use crate::domain::records::Event;
use crate::domain::validate;
use crate::domain::values::EventType;
use crate::error::AppError;
use crate::events::streams::{self, Start, Wanted};

#[derive(Default)]
pub struct SubscriptionRoot;

#[Subscription(name = "Subscription")]
impl SubscriptionRoot {
    /// Ordered events of one execution. With `afterSequence`, first replays the stored
    /// events after it, then goes live, with no gap and no duplicate.
    async fn execution_events(
        &self,
        ctx: &Context<'_>,
        execution_id: ID,
        types: Option<Vec<EventType>>,
        after_sequence: Option<i32>,
    ) -> Result<impl Stream<Item = Result<Event>> + use<>> {
        let after_sequence = validate::non_negative("afterSequence", after_sequence).gql()?;
        Box::pin(one_execution(
            ctx,
            &execution_id,
            after_sequence,
            of_types(types),
        ))
        .await
    }

    /// Progress and status of one execution (EXECUTION_PROGRESS and status changes).
    async fn execution_progress(
        &self,
        ctx: &Context<'_>,
        execution_id: ID,
    ) -> Result<impl Stream<Item = Result<Event>> + use<>> {
        let wanted: Wanted = Box::new(|e| e.kind.is_progress_or_status());
        Box::pin(one_execution(ctx, &execution_id, None, wanted)).await
    }

    /// Step events (STEP_*) of one execution.
    async fn step_events(
        &self,
        ctx: &Context<'_>,
        execution_id: ID,
    ) -> Result<impl Stream<Item = Result<Event>> + use<>> {
        let wanted: Wanted = Box::new(|e| e.kind.is_step());
        Box::pin(one_execution(ctx, &execution_id, None, wanted)).await
    }

    /// For dashboards: every event of every execution the caller may see that matches.
    async fn executions_feed(
        &self,
        ctx: &Context<'_>,
        filter: Option<ExecutionFilter>,
        types: Option<Vec<EventType>>,
    ) -> Result<impl Stream<Item = Result<Event>> + use<>> {
        let principal = caller(ctx, Permission::Read).gql()?;
        let filter = Filter::parse(filter).gql()?;
        let hub = events(ctx);
        let events = streams::feed(store(ctx).clone(), hub, principal, filter, of_types(types));
        Ok(events.map(GqlResult::gql))
    }
}

fn of_types(types: Option<Vec<EventType>>) -> Wanted {
    match types {
        Some(types) => Box::new(move |e| types.contains(&e.kind)),
        None => Box::new(|_| true),
    }
}

/// The stream of one execution the caller may see, from `after_sequence` or from now.
/// Callers box this future: awaited inline, its database reads would size the state
/// that every idle subscription keeps.
async fn one_execution(
    ctx: &Context<'_>,
    execution_id: &str,
    after_sequence: Option<i64>,
    wanted: Wanted,
) -> Result<impl Stream<Item = Result<Event>> + use<>> {
    let principal = caller(ctx, Permission::Read).gql()?;
    let topic = events(ctx).subscribe(execution_id);
    // Through the loader: thousands of clients subscribing at once make one read per
    // batch instead of each holding a read of its own while it waits for a
    // connection (12 KB apiece, and the allocator keeps the peak).
    let execution = loaders::execution(ctx, &principal, execution_id)
        .await?
        .ok_or_else(|| to_graphql(AppError::no_execution(execution_id)))?;
    let last_sequence = execution.last_sequence;
    let settled_at = execution.is_settled().then_some(last_sequence);
    let start = match after_sequence {
        Some(sequence) => Start::After(sequence),
        None => Start::Now(last_sequence),
    };
    let events = streams::execution_events(
        store(ctx).clone(),
        topic,
        execution_id.to_owned(),
        start,
        settled_at,
        wanted,
    );
    Ok(events.map(GqlResult::gql))
}
