//! The GraphQL API: schema assembly with its limits. Resolvers are adapters: they
//! take the authenticated caller, make one call (to the service for a change, to the
//! store for a read) and map errors once (`errors`).

pub mod context;
pub mod error_codes;
pub mod errors;
pub mod limits;
pub mod loaders;
pub mod mutations;
pub mod objects;
pub mod parse_cache;
pub mod query;
pub mod subscriptions;

use async_graphql::Schema;

use crate::config::ServeConfig;
use crate::service::Service;
use crate::store::Store;

pub type ApiSchema =
    Schema<query::QueryRoot, mutations::MutationRoot, subscriptions::SubscriptionRoot>;

pub fn build_schema(services: Option<(Store, Service)>, limits: &ServeConfig) -> ApiSchema {
    let mut builder = Schema::build(
        query::QueryRoot,
        mutations::MutationRoot::default(),
        subscriptions::SubscriptionRoot,
    )
    .limit_recursive_depth(32)
    .extension(parse_cache::ParseCache::new(
        limits::QueryLimits {
            max_depth: limits.max_query_depth,
            max_complexity: limits.max_query_complexity,
        },
        limits.request_timeout,
    ));
    if let Some((store, service)) = services {
        let parts = loaders::parts_loader(store.clone(), limits.dataloader_delay);
        builder = builder.data(store).data(service).data(parts);
    }
    builder.finish()
}

/// The SDL that `exechub schema` prints and `schema.graphql` holds.
pub fn sdl() -> String {
    build_schema(None, &ServeConfig::default()).sdl()
}
