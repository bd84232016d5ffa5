//! Batches what each execution of a list selects (steps, checkpoints, webhooks,
//! events, logs): the executions of a response ask together, so each part is one
//! query for the whole page instead of one per execution. The execution itself was read through the
//! caller's tenant scope; its parts are read by id.

use std::collections::HashMap;
use std::time::Duration;

use async_graphql::Context;
use async_graphql::dataloader::{DataLoader, Loader};

use crate::domain::records::{Checkpoint, Event, Step, Webhook};
use crate::error::AppError;
use crate::graphql::errors::GqlResult;
use crate::store::Store;
use crate::store::windows::{EventWindow, LogPage, LogWindow};

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
windowed!(EventsOf, EventWindow, Vec<Event>, events_of);
windowed!(LogsOf, LogWindow, LogPage, logs_of);

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
