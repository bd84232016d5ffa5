//! A cache of parsed GraphQL documents keyed by query text. Frontends and agents send
//! the same few operations over and over; parsing them anew is a tenth of the cost of
//! a small query (see BENCHMARKS.md). A document is checked against the query limits
//! (`limits`) once, when it is parsed: only documents within them are cached.
//! Validation still runs on every request. As the schema's one extension it also
//! gives parse and validation errors their codes (`error_codes`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextParseQuery, NextValidation,
};
use async_graphql::parser::types::ExecutableDocument;
use async_graphql::{ServerError, ServerResult, ValidationResult, Variables};

use super::error_codes::{PARSE_FAILED, VALIDATION_FAILED, coded};
use super::limits::QueryLimits;

/// Documents kept at most; the cache starts over when it is full, so a client that
/// sends ever-new query texts cannot grow it without bound.
const CAPACITY: usize = 1024;
/// Longer query texts are not cached.
const MAX_QUERY_BYTES: usize = 16 * 1024;

#[derive(Clone)]
pub struct ParseCache {
    limits: QueryLimits,
    documents: Arc<Mutex<HashMap<String, ExecutableDocument>>>,
}

impl ExtensionFactory for ParseCache {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(self.clone())
    }
}

#[async_graphql::async_trait::async_trait]
impl Extension for ParseCache {
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        if let Some(document) = self.lock().get(query) {
            return Ok(document.clone());
        }
        let document = (next.run(ctx, query, variables).await).map_err(|mut error| {
            error.message = format!("the query does not parse: {}", error.message.trim());
            coded(error, PARSE_FAILED)
        })?;
        self.limits.check(&document)?;
        if query.len() <= MAX_QUERY_BYTES {
            let mut documents = self.lock();
            if documents.len() >= CAPACITY {
                documents.clear();
            }
            documents.insert(query.to_owned(), document.clone());
        }
        Ok(document)
    }

    async fn validation(
        &self,
        ctx: &ExtensionContext<'_>,
        next: NextValidation<'_>,
    ) -> Result<ValidationResult, Vec<ServerError>> {
        next.run(ctx).await.map_err(|errors| {
            errors
                .into_iter()
                .map(|error| coded(error, VALIDATION_FAILED))
                .collect()
        })
    }
}

impl ParseCache {
    pub fn new(limits: QueryLimits) -> Self {
        ParseCache {
            limits,
            documents: Arc::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, ExecutableDocument>> {
        self.documents
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
