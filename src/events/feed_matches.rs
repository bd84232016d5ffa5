//! Which events of the bus a filtered feed passes, decided once per distinct filter
//! and tenant scope however many subscribers share them. A feed with a filter asks
//! the database which executions of a batch it matches; asked by each subscriber,
//! the same question would cost a query per subscriber per event. The first to ask
//! reads, and the others with the same question wait for that read. Answers are
//! kept for a while, since the subscribers of one event arrive one after the other.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use futures::FutureExt;
use futures::future::{BoxFuture, Shared};

use crate::auth::{Principal, TenantScope};
use crate::domain::query::Filter;
use crate::domain::records::Event;
use crate::error::{AppError, AppResult};
use crate::store::Store;

/// Answers kept at most: the map starts over beyond this.
const REMEMBERED: usize = 50_000;

type Matched = Shared<BoxFuture<'static, Result<Arc<HashSet<String>>, AppError>>>;

/// One question: does this filter, in this scope, pass this event of this execution.
#[derive(Clone, Hash, PartialEq, Eq)]
struct Question {
    scope: TenantScope,
    filter: Arc<str>,
    execution_id: String,
    sequence: i64,
}

#[derive(Clone, Default)]
pub struct FeedMatches(Arc<Mutex<HashMap<Question, Matched>>>);

/// A feed's filter and the key that tells it apart from other filters.
pub struct FeedFilter {
    pub filter: Filter,
    key: Arc<str>,
}

impl FeedFilter {
    pub fn new(filter: Filter) -> Self {
        let key = format!("{filter:?}").into();
        FeedFilter { filter, key }
    }
}

impl FeedMatches {
    /// The ids of the executions of `events` that `filter` passes for `principal`.
    pub async fn matching(
        &self,
        store: &Store,
        principal: &Principal,
        filter: &FeedFilter,
        events: &[&Event],
    ) -> AppResult<HashSet<String>> {
        let scope = principal.scope();
        let mut answers: Vec<(&str, Matched)> = Vec::new();
        {
            let mut known = self.0.lock().unwrap_or_else(|p| p.into_inner());
            if known.len() > REMEMBERED {
                known.clear();
            }
            let mut unasked: Vec<(&str, Question)> = Vec::new();
            for event in events {
                let question = Question {
                    scope: scope.clone(),
                    filter: filter.key.clone(),
                    execution_id: event.execution_id.clone(),
                    sequence: event.sequence,
                };
                match known.get(&question) {
                    Some(answer) => answers.push((&event.execution_id, answer.clone())),
                    None => unasked.push((&event.execution_id, question)),
                }
            }
            if !unasked.is_empty() {
                let ids = unasked.iter().map(|(id, _)| id.to_string()).collect();
                let read = read(store.clone(), principal.clone(), filter.filter.clone(), ids);
                let read = read.boxed().shared();
                for (execution_id, question) in unasked {
                    known.insert(question, read.clone());
                    answers.push((execution_id, read.clone()));
                }
            }
        }
        let mut matched = HashSet::new();
        for (execution_id, answer) in answers {
            if answer.await?.contains(execution_id) {
                matched.insert(execution_id.to_owned());
            }
        }
        Ok(matched)
    }
}

async fn read(
    store: Store,
    principal: Principal,
    filter: Filter,
    ids: Vec<String>,
) -> AppResult<Arc<HashSet<String>>> {
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    Ok(Arc::new(store.matching(&principal, &filter, &ids).await?))
}
