//! GraphQL views of flow control: each limit an admin set, and what each of its
//! keys holds now.

use async_graphql::Object;

use crate::domain::limits::{BudgetPeriod, Limit};
use crate::domain::records::Timestamp;
use crate::service::{KeyView, LimitView};

#[Object(name = "Limit")]
impl LimitView {
    /// The key or key template, e.g. `customer:{customerId}` or `openai`.
    async fn key(&self) -> String {
        self.limit.key.to_string()
    }
    /// At most this many steps of each key running at once.
    async fn concurrency(&self) -> Option<i32> {
        self.limit.concurrency.map(|c| c as i32)
    }
    /// At most this many steps of each key handed to workers at once (fair share).
    async fn share(&self) -> Option<i32> {
        self.limit.share.map(|c| c as i32)
    }
    /// At most this many executions of each key started and not yet settled.
    async fn executions(&self) -> Option<i32> {
        self.limit.executions.map(|c| c as i32)
    }
    /// At most this many starts per period of each key, e.g. `60/1m`.
    async fn rate(&self) -> Option<String> {
        self.limit.rate.as_ref().map(|r| r.text())
    }
    /// How many of the rate's starts may go at once.
    async fn burst(&self) -> Option<i32> {
        self.limit.rate.as_ref().map(|r| r.burst as i32)
    }
    /// At most this cost spent by each key's executions per `budgetPeriod`.
    async fn max_cost(&self) -> Option<f64> {
        self.limit.budget.as_ref().and_then(|b| b.max_cost)
    }
    /// At most this many tokens used by each key's executions per `budgetPeriod`.
    async fn max_tokens(&self) -> Option<i64> {
        self.limit.budget.as_ref().and_then(|b| b.max_tokens)
    }
    async fn budget_period(&self) -> Option<BudgetPeriod> {
        self.limit.budget.as_ref().map(|b| b.period)
    }
    async fn updated_at(&self) -> Timestamp {
        self.limit.updated_at
    }
    async fn updated_by(&self) -> &str {
        &self.limit.updated_by
    }
    /// The keys this limit holds to that hold or wait on anything, or have a rate or
    /// a budget (a share's count shows as the key `share <key>`).
    async fn keys(&self) -> &[KeyView] {
        &self.keys
    }
}

#[Object(name = "LimitKey")]
impl KeyView {
    /// The key, e.g. `customer:acme`.
    async fn key(&self) -> &str {
        &self.state.key
    }
    /// Steps of the key running now, holding its slots.
    async fn running(&self) -> i32 {
        to_int(self.state.usage.running)
    }
    /// Steps waiting on the key: for a slot, or for their turn at its rate.
    async fn waiting(&self) -> i32 {
        to_int(self.state.waiting_steps)
    }
    /// Executions of the key started and not yet settled, holding its slots.
    async fn running_executions(&self) -> i32 {
        to_int(self.state.usage.executions)
    }
    /// QUEUED executions of the key waiting for a slot.
    async fn waiting_executions(&self) -> i32 {
        to_int(self.state.usage.executions_waiting)
    }
    /// The cost the key's executions spent in the limit's current budget period.
    async fn spent_cost(&self) -> f64 {
        self.spent().0
    }
    /// The tokens the key's executions used in the limit's current budget period.
    async fn spent_tokens(&self) -> i64 {
        self.spent().1
    }
    /// Starts the key's rate allows at once now.
    async fn tokens_left(&self) -> Option<i32> {
        self.tokens_left.map(|t| t.min(i32::MAX as u32) as i32)
    }
    /// Since when the longest wait on the key lasts (a step handed out, an
    /// execution created).
    async fn oldest_waiting_since(&self) -> Option<Timestamp> {
        self.state.oldest_waiting_since
    }
}

fn to_int(count: i64) -> i32 {
    count.clamp(0, i32::MAX as i64) as i32
}

/// A limit just set, with no keys read.
pub fn set(limit: Limit) -> LimitView {
    LimitView {
        limit,
        keys: Vec::new(),
    }
}
