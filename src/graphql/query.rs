//! The query root: one execution, the filtered and paged list, the `Node` lookup
//! and `me`. Every read is scoped to the caller's tenant in SQL.

use async_graphql::{Context, ID, Object, Result};

use super::context::{caller, store};
use super::errors::GqlResult;
use super::loaders;
use super::objects::Node;
use super::objects::connection::ExecutionConnection;
use crate::auth::{Permission, Principal};
use crate::domain::analytics::{
    self, ErrorCount, ExecutionStats, Measures, StatsDimension, StepStats, TimeBucket,
};
use crate::domain::filter::{ExecutionFilter, ExecutionOrder, ExecutionSortField, SortDirection};
use crate::domain::paging::PageRequest;
use crate::domain::query::Filter;
use crate::domain::records::Execution;
use crate::domain::recurring::Schedule;
use crate::service::LimitView;

#[derive(Default)]
pub struct QueryRoot;

fn default_order() -> Vec<ExecutionOrder> {
    vec![ExecutionOrder {
        field: ExecutionSortField::CreatedAt,
        direction: SortDirection::Desc,
    }]
}

#[Object(name = "Query")]
impl QueryRoot {
    async fn node(&self, ctx: &Context<'_>, id: ID) -> Result<Option<Node>> {
        Ok(self.execution(ctx, id).await?.map(Node::Execution))
    }

    /// Every flow-control limit, with what each of its keys holds now (admins, and
    /// operators of no tenant).
    async fn limits(&self, ctx: &Context<'_>) -> Result<Vec<LimitView>> {
        let by = super::context::authenticated(ctx).gql()?;
        super::context::service(ctx).limits(&by).await.gql()
    }

    /// A schedule, or null when it does not exist or belongs to another tenant.
    async fn schedule(&self, ctx: &Context<'_>, id: ID) -> Result<Option<Schedule>> {
        let by = super::context::authenticated(ctx).gql()?;
        super::context::service(ctx).schedule(&by, &id).await.gql()
    }

    /// The caller's schedules, oldest first (`first` at most 500).
    async fn schedules(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 100)] first: i32,
    ) -> Result<Vec<Schedule>> {
        let by = super::context::authenticated(ctx).gql()?;
        let first = first.max(0) as u64;
        super::context::service(ctx)
            .schedules(&by, first)
            .await
            .gql()
    }

    /// The caller, as its token says.
    async fn me(&self, ctx: &Context<'_>) -> Result<Principal> {
        caller(ctx, Permission::Read).gql()
    }

    /// An execution, or null when it does not exist or belongs to another tenant.
    async fn execution(&self, ctx: &Context<'_>, id: ID) -> Result<Option<Execution>> {
        let principal = caller(ctx, Permission::Read).gql()?;
        loaders::execution(ctx, &principal, &id).await
    }

    #[allow(clippy::too_many_arguments)] // the contract's arguments
    async fn executions(
        &self,
        ctx: &Context<'_>,
        filter: Option<ExecutionFilter>,
        #[graphql(default_with = "Some(default_order())")] order_by: Option<Vec<ExecutionOrder>>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> Result<ExecutionConnection> {
        let principal = caller(ctx, Permission::Read).gql()?;
        let filter = Filter::parse(filter).gql()?;
        let order = order_by.as_deref().unwrap_or_default();
        let page = PageRequest::parse(order, first, after, last, before).gql()?;
        let page = (store(ctx).list_executions(&principal, &filter, page))
            .await
            .gql()?;
        Ok(ExecutionConnection {
            principal,
            filter,
            edges: page.items,
            has_next_page: page.has_next_page,
            has_previous_page: page.has_previous_page,
        })
    }

    /// Analytics over execution history, computed in SQL.
    async fn execution_stats(
        &self,
        ctx: &Context<'_>,
        filter: Option<ExecutionFilter>,
        #[graphql(default_with = "Some(Vec::new())")] group_by: Option<Vec<StatsDimension>>,
        bucket: Option<TimeBucket>,
        #[graphql(default_with = "Some(100)")] limit: Option<i32>,
    ) -> Result<Vec<ExecutionStats>> {
        let principal = caller(ctx, Permission::Read).gql()?;
        store(ctx)
            .execution_stats(
                &principal,
                &Filter::parse(filter).gql()?,
                group_by.as_deref().unwrap_or(&[]),
                bucket,
                measures(ctx),
                analytics::limit(limit, 100).gql()?,
            )
            .await
            .gql()
    }

    async fn error_distribution(
        &self,
        ctx: &Context<'_>,
        filter: Option<ExecutionFilter>,
        #[graphql(default_with = "Some(20)")] limit: Option<i32>,
    ) -> Result<Vec<ErrorCount>> {
        let principal = caller(ctx, Permission::Read).gql()?;
        store(ctx)
            .error_distribution(
                &principal,
                &Filter::parse(filter).gql()?,
                analytics::limit(limit, 20).gql()?,
            )
            .await
            .gql()
    }

    async fn step_stats(
        &self,
        ctx: &Context<'_>,
        filter: Option<ExecutionFilter>,
        #[graphql(default_with = "Some(50)")] limit: Option<i32>,
    ) -> Result<Vec<StepStats>> {
        let principal = caller(ctx, Permission::Read).gql()?;
        store(ctx)
            .step_stats(
                &principal,
                &Filter::parse(filter).gql()?,
                analytics::limit(limit, 50).gql()?,
            )
            .await
            .gql()
    }
}

/// The parts of `ExecutionStats` the query selected (through fragments too).
fn measures(ctx: &Context<'_>) -> Measures {
    let stats = ctx.look_ahead();
    let duration = stats.field("duration");
    let any = |of: &async_graphql::Lookahead, fields: &[&str]| {
        fields.iter().any(|field| of.field(field).exists())
    };
    Measures {
        by_status: any(&stats, &["byStatus"]),
        cost: any(&stats, &["totalCost", "avgCost"]),
        tokens: any(&stats, &["totalTokens"]),
        api_calls: any(&stats, &["totalApiCalls"]),
        retries: any(&stats, &["totalRetries"]),
        durations: any(&duration, &["avgMs", "minMs", "maxMs"]),
        percentiles: any(&duration, &["p50Ms", "p90Ms", "p95Ms", "p99Ms"]),
    }
}
