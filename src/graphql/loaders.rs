//! Batches reads that many resolvers make at once: `execution(id)` of concurrent
//! requests (one query per tenant scope), and what each execution of a list selects
//! (steps, checkpoints, webhooks, events, logs), one query for the whole page instead
//! of one per execution. Parts are read by id once the execution was found visible.

use std::collections::HashMap;
use std::time::Duration;

use async_graphql::Context;
use async_graphql::dataloader::{DataLoader, Loader};

use crate::auth::{Principal, TenantScope};
use crate::domain::records::{Checkpoint, Event, Execution, Step, Webhook};
use crate::error::AppError;
use crate::graphql::errors::GqlResult;
use crate::store::Store;
use crate::store::first_rows::{EventWindow, LogPage, LogWindow};

/// The loader over the store; one per schema, so concurrent requests batch too.
pub struct Parts(Store);

pub fn parts_loader(store: Store, delay: Duration) -> DataLoader<Parts> {
    DataLoader::new(Parts(store), tokio::spawn).delay(delay)
}

/// A key type per part, each batched by one `Store::*_of` read.
macro_rules! batched {
    ($key:ident, $item:ty, $read:ident) => {
        #[derive(Clone, PartialEq, Eq, Hash)]
        pub struct $key(pub String);

        impl Loader<$key> for Parts {
            type Value = Vec<$item>;
            type Error = AppError;

            async fn load(&self, keys: &[$key]) -> Result<HashMap<$key, Vec<$item>>, AppError> {
                let ids: Vec<String> = keys.iter().map(|key| key.0.clone()).collect();
                let found = self.0.$read(&ids).await?;
                Ok(found
                    .into_iter()
                    .map(|(id, items)| ($key(id), items))
                    .collect())
            }
        }
    };
}

/// A key type per windowed part: executions asking with the same window (the same
/// arguments) are read by one `Store::*_of` query.
macro_rules! windowed {
    ($key:ident, $window:ty, $value:ty, $read:ident) => {
        #[derive(Clone, PartialEq, Eq, Hash)]
        pub struct $key(pub String, pub $window);

        impl Loader<$key> for Parts {
            type Value = $value;
            type Error = AppError;

            async fn load(&self, keys: &[$key]) -> Result<HashMap<$key, $value>, AppError> {
                let mut by_window: HashMap<&$window, Vec<String>> = HashMap::new();
                for key in keys {
                    by_window.entry(&key.1).or_default().push(key.0.clone());
                }
                let mut found = HashMap::new();
                for (window, ids) in by_window {
                    for (id, value) in self.0.$read(&ids, window).await? {
                        found.insert($key(id, window.clone()), value);
                    }
                }
                Ok(found)
            }
        }
    };
}

batched!(StepsOf, Step, steps_of);
batched!(CheckpointsOf, Checkpoint, checkpoints_of);
batched!(WebhooksOf, Webhook, webhooks_of);
windowed!(ExecutionOf, TenantScope, Execution, executions_of);
windowed!(EventsOf, EventWindow, Vec<Event>, events_of);
windowed!(LogsOf, LogWindow, LogPage, logs_of);

/// The execution if it exists and the caller may see it, read together with those
/// concurrent requests ask for.
pub async fn execution(
    ctx: &Context<'_>,
    principal: &Principal,
    id: &str,
) -> async_graphql::Result<Option<Execution>> {
    let loader = ctx.data_unchecked::<DataLoader<Parts>>();
    loader
        .load_one(ExecutionOf(id.to_owned(), principal.scope()))
        .await
        .gql()
}

/// One execution's part, batched with those its siblings ask for (none: empty).
pub async fn load<K, T>(ctx: &Context<'_>, key: K) -> async_graphql::Result<T>
where
    K: Send + Sync + std::hash::Hash + Eq + Clone + 'static,
    T: Default,
    Parts: Loader<K, Value = T, Error = AppError>,
{
    let loader = ctx.data_unchecked::<DataLoader<Parts>>();
    Ok(loader.load_one(key).await.gql()?.unwrap_or_default())
}
