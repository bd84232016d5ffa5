//! The one way a change to an execution is made, whoever asks: GraphQL resolvers,
//! the scheduler's workers and maintenance, and any adapter added later. Every
//! command takes the same path: authorise the caller → lock and read the execution
//! (the `Snapshot`) → run the domain rule with the current time → settle (hand out
//! the steps the change made ready) → save it with its events and audit row → queue
//! the jobs it asks for and publish its events (`committed`).
//!
//! Most commands are saved by group commit (`group_commit`): they wait while the
//! transaction in flight of their execution's lane commits and go together in the
//! next one. Two kinds take a transaction of their own (`apply_alone`): those that
//! read the execution's webhooks, which shared transactions do not load, and claims,
//! whose claimer tries the next offer at once when another was faster.
//!
//! The commands clients send are in `lifecycle`, `steps` and `claims`; the
//! scheduler submits its own rules through `as_scheduler`.

mod claims;
mod group_commit;
mod lifecycle;
mod limits;
mod schedules;
mod steps;

use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

pub use claims::Claim;
pub use limits::{KeyView, LimitView};

use crate::auth::{Permission, Principal};
use crate::clock;
use crate::domain::change::Change;
use crate::domain::records::{Execution, Timestamp};
use crate::domain::snapshot::Snapshot;
use crate::domain::step_graph::StepKinds;
use crate::error::AppResult;
use crate::events::Hub;
use crate::store::Store;
use crate::store::shared_transactions::BatchedRule;
use group_commit::{Committed, Committer};

/// `NOT_FOUND` for an execution `by` may not see (shared transactions read every
/// execution they change; a transaction of its own reads only what `by` may see).
fn visible(by: &Principal, snapshot: &Snapshot) -> AppResult<()> {
    let execution = &snapshot.execution;
    let (customer, provider) = (&execution.customer_id, &execution.provider_id);
    if by.sees(customer.as_deref(), provider.as_deref()) {
        Ok(())
    } else {
        Err(crate::error::AppError::no_execution(&execution.id))
    }
}

/// What follows a commit outside the database, beyond publishing its events: the
/// scheduler queues the jobs the change asks for, starts here the steps this process
/// has free slots for, and interrupts the attempts the change ended. The service
/// owns this seam so that it never depends on the scheduler.
pub trait AfterCommit: Send + Sync {
    fn committed(&self, change: &Change);
}

/// What the commands need to know of how this deployment runs steps.
#[derive(Clone)]
pub struct Policy {
    /// The handler kinds a new step may name.
    pub step_kinds: StepKinds,
    /// The lease of a running step unless its claimer asks for another.
    pub lease: Duration,
    /// How long a handed-out step waits before it counts one priority level higher.
    pub aging: Duration,
}

#[derive(Clone)]
pub struct Service(Arc<Inner>);

struct Inner {
    /// The API's pools: what commands in a transaction of their own use.
    store: Store,
    /// Shared transactions, on connections of their own.
    commits: Committer,
    events: Hub,
    policy: Policy,
    after_commit: OnceLock<Box<dyn AfterCommit>>,
}

impl Service {
    /// `store` serves the commands saved alone; group commit runs on `own`, a pool
    /// that API requests never hold.
    pub fn new(store: Store, own: Store, events: Hub, policy: Policy) -> Self {
        Service(Arc::new_cyclic(|service: &Weak<Inner>| {
            let service = service.clone();
            let committed: Committed = Arc::new(move |change| {
                if let Some(inner) = service.upgrade() {
                    Service(inner).committed(change);
                }
            });
            Inner {
                store,
                commits: Committer::start(own, committed),
                events,
                policy,
                after_commit: OnceLock::new(),
            }
        }))
    }

    /// Sets what follows each commit (the scheduler, once it is open); once only.
    pub fn set_after_commit(&self, after: Box<dyn AfterCommit>) {
        if self.0.after_commit.set(after).is_err() {
            tracing::warn!("the service's after-commit step was set already");
        }
    }

    pub fn events(&self) -> &Hub {
        &self.0.events
    }

    pub fn policy(&self) -> &Policy {
        &self.0.policy
    }

    /// Runs `rule` on execution `execution_id` as `by`, who must hold `permission`,
    /// in the next shared transaction of the execution's lane, which publishes and
    /// queues what it asks for once committed (whether or not the caller still
    /// waits). The rule is queued before this
    /// returns, so that commands submitted one after the other apply in that order.
    /// `NOT_FOUND` when the execution does not exist or `by` may not see it.
    pub fn submit<F>(
        &self,
        by: Principal,
        permission: Permission,
        action: &'static str,
        execution_id: &str,
        rule: F,
    ) -> impl Future<Output = AppResult<Change>> + Send + 'static
    where
        F: FnOnce(&Snapshot, &str, Timestamp) -> AppResult<Change> + Send + 'static,
    {
        let allowed = by.require(permission);
        let viewer = by.clone();
        let committed = allowed.is_ok().then(|| {
            self.0.commits.submit(BatchedRule {
                principal: by,
                action,
                execution_id: execution_id.to_owned(),
                rule: Box::new(move |snapshot| {
                    visible(&viewer, snapshot)?;
                    snapshot.settle(|s| rule(s, &viewer.subject, clock::now()))
                }),
            })
        });
        async move {
            allowed?;
            committed.expect("queued when allowed").await
        }
    }

    /// The door of the scheduler's own rules (workers' reports, the maintenance
    /// loop): `submit` as the scheduler, the rule given the snapshot and the time.
    pub fn as_scheduler<F>(
        &self,
        action: &'static str,
        execution_id: &str,
        rule: F,
    ) -> impl Future<Output = AppResult<Change>> + Send + 'static
    where
        F: FnOnce(&Snapshot, Timestamp) -> AppResult<Change> + Send + 'static,
    {
        let rule = move |snapshot: &Snapshot, _: &str, now| rule(snapshot, now);
        let (by, permission) = (Principal::scheduler(), Permission::Manage);
        self.submit(by, permission, action, execution_id, rule)
    }

    /// As `submit`, in a transaction of its own, with the execution's webhooks read
    /// too when `with_webhooks`. The transaction and what follows it run on a task
    /// of their own, so that a caller that stops waiting cannot leave a committed
    /// change unpublished.
    async fn apply_alone<F>(
        &self,
        by: &Principal,
        permission: Permission,
        action: &'static str,
        execution_id: &str,
        with_webhooks: bool,
        rule: F,
    ) -> AppResult<Change>
    where
        F: FnOnce(&Snapshot, &str, Timestamp) -> AppResult<Change> + Send + 'static,
    {
        by.require(permission)?;
        let (service, by, id) = (self.clone(), by.clone(), execution_id.to_owned());
        let applied = tokio::spawn(async move {
            let rule =
                |snapshot: &Snapshot| snapshot.settle(|s| rule(s, &by.subject, clock::now()));
            let store = &service.0.store;
            let change = (store.apply(&by, action, &id, with_webhooks, rule)).await?;
            service.committed(&change);
            Ok(change)
        });
        applied.await.unwrap_or_else(|panic| {
            tracing::error!(%panic, action, "a command panicked");
            Err(crate::error::AppError::Internal("the change failed".into()))
        })
    }

    /// Saves a new execution in the next shared transaction of creates; unless its
    /// idempotency key named one created before (which is answered instead), the
    /// lane queues and publishes it once committed, and only the lane: a second
    /// follow-up would start its steps twice, the second start interrupting the first.
    async fn save_new(&self, by: Principal, change: Change) -> AppResult<Execution> {
        (self.0.commits).create((by, change)).await
    }

    /// After a commit: the events to subscribers, then the scheduler's part.
    fn committed(&self, change: &Change) {
        self.0.events.publish(change);
        if let Some(after) = self.0.after_commit.get() {
            after.committed(change);
        }
    }
}
