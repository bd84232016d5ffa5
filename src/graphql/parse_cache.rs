//! A cache of parsed GraphQL documents keyed by query text. Frontends and agents send
//! the same few operations over and over; parsing them anew is a tenth of the cost of
//! a small query (see BENCHMARKS.md). Only documents that passed validation are
//! kept, and the cache is bounded by the memory its documents take, so that
//! clients sending ever-new (or invalid) query texts cannot grow it. As the
//! schema's one extension it also checks documents against the query limits
//! (`limits`: once, or on every request when pages are sized by variables),
//! refuses strings holding NUL (which the database cannot store) in variables and
//! in the document, gives parse and validation errors their codes (`error_codes`),
//! and stops a query or mutation that runs past `--request-timeout`, whichever
//! transport brought it (HTTP, WebSocket, SSE).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextExecute, NextParseQuery, NextValidation,
};
use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};
use async_graphql::{
    ErrorExtensions, Response, ServerError, ServerResult, ValidationResult, Variables,
};
use async_graphql_value::ConstValue;

use super::error_codes::{PARSE_FAILED, VALIDATION_FAILED, coded};
use super::limits::QueryLimits;
use crate::domain::validate::NUL_REFUSED;

/// Longer query texts are not cached.
const MAX_QUERY_BYTES: usize = 16 * 1024;
/// What the cached documents may take, estimated from their texts: a parsed
/// document takes up to about a hundred times its text (a field is a few hundred
/// bytes of nodes and positions), so this keeps 32 MiB of documents or fewer.
const BUDGET_BYTES: usize = 32 * 1024 * 1024;
const BYTES_PER_QUERY_BYTE: usize = 100;

/// A document that validated, and whether its pages are sized by variables (so
/// that each request's need checking against the limits again).
#[derive(Clone)]
struct Parsed {
    document: Arc<ExecutableDocument>,
    variable_pages: bool,
}

/// The documents and the memory they are estimated to take.
#[derive(Default)]
struct Documents {
    by_query: HashMap<Arc<str>, Parsed>,
    bytes: usize,
}

#[derive(Clone)]
pub struct ParseCache {
    limits: QueryLimits,
    /// How long a query or mutation may run (`--request-timeout`).
    request_timeout: Duration,
    documents: Arc<Mutex<Documents>>,
}

impl ExtensionFactory for ParseCache {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(OneRequest {
            cache: self.clone(),
            parsed: Mutex::default(),
        })
    }
}

/// The cache as one request sees it: a document it parsed waits here until it
/// passes validation.
struct OneRequest {
    cache: ParseCache,
    parsed: Mutex<Option<(Arc<str>, Parsed)>>,
}

#[async_graphql::async_trait::async_trait]
impl Extension for OneRequest {
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        refuse_nul_variables(variables)?;
        if let Some(parsed) = self.cache.get(query) {
            if parsed.variable_pages {
                self.cache.limits.check(&parsed.document, variables)?;
            }
            return Ok(ExecutableDocument::clone(&parsed.document));
        }
        let document = (next.run(ctx, query, variables).await).map_err(|mut error| {
            error.message = format!("the query does not parse: {}", error.message.trim());
            coded(error, PARSE_FAILED)
        })?;
        let variable_pages = self.cache.limits.check(&document, variables)?;
        refuse_nul_literals(&document)?;
        if query.len() <= MAX_QUERY_BYTES {
            let parsed = Parsed {
                document: Arc::new(document.clone()),
                variable_pages,
            };
            *lock(&self.parsed) = Some((query.into(), parsed));
        }
        Ok(document)
    }

    async fn validation(
        &self,
        ctx: &ExtensionContext<'_>,
        next: NextValidation<'_>,
    ) -> Result<ValidationResult, Vec<ServerError>> {
        let validated = next.run(ctx).await.map_err(|errors| {
            errors
                .into_iter()
                .map(|error| coded(error, VALIDATION_FAILED))
                .collect::<Vec<_>>()
        })?;
        if let Some((query, parsed)) = lock(&self.parsed).take() {
            self.cache.insert(query, parsed);
        }
        Ok(validated)
    }

    /// A query or mutation past its time is dropped, and with it what it holds
    /// (database connections among them); subscriptions are not executed here.
    async fn execute(
        &self,
        ctx: &ExtensionContext<'_>,
        operation_name: Option<&str>,
        next: NextExecute<'_>,
    ) -> Response {
        let timeout = self.cache.request_timeout;
        match tokio::time::timeout(timeout, next.run(ctx, operation_name)).await {
            Ok(response) => response,
            Err(_) => Response::from_errors(vec![timed_out(timeout)]),
        }
    }
}

fn timed_out(timeout: Duration) -> ServerError {
    let message = format!(
        "the request ran longer than {timeout:?} (--request-timeout) and was stopped (a \
         mutation may have been applied): ask for less"
    );
    async_graphql::Error::new(message)
        .extend_with(|_, extensions| extensions.set("code", "INTERNAL"))
        .into_server_error(Default::default())
}

impl ParseCache {
    pub fn new(limits: QueryLimits, request_timeout: Duration) -> Self {
        ParseCache {
            limits,
            request_timeout,
            documents: Arc::default(),
        }
    }

    fn get(&self, query: &str) -> Option<Parsed> {
        lock(&self.documents).by_query.get(query).cloned()
    }

    /// Keeps a validated document; the cache starts over when it would go over its
    /// budget.
    fn insert(&self, query: Arc<str>, parsed: Parsed) {
        let bytes = query.len() * BYTES_PER_QUERY_BYTE;
        let mut documents = lock(&self.documents);
        if documents.bytes + bytes > BUDGET_BYTES {
            *documents = Documents::default();
        }
        if documents.by_query.insert(query, parsed).is_none() {
            documents.bytes += bytes;
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn nul_refused(name: &str) -> ServerError {
    async_graphql::Error::new(format!("invalid value for `{name}`: {NUL_REFUSED}"))
        .extend_with(|_, extensions| {
            extensions.set("code", "BAD_USER_INPUT");
            extensions.set("field", name);
        })
        .into_server_error(Default::default())
}

fn refuse_nul_variables(variables: &Variables) -> ServerResult<()> {
    for (name, value) in variables.iter() {
        if const_has_nul(value) {
            return Err(nul_refused(&format!("${name}")));
        }
    }
    Ok(())
}

/// Strings written in the document (arguments of any field, in any fragment, and
/// variables' defaults).
fn refuse_nul_literals(document: &ExecutableDocument) -> ServerResult<()> {
    for (_, operation) in document.operations.iter() {
        for variable in &operation.node.variable_definitions {
            let default = variable.node.default_value.as_ref();
            if default.is_some_and(|value| const_has_nul(&value.node)) {
                return Err(nul_refused(&format!("${}", variable.node.name.node)));
            }
        }
    }
    let operations = document
        .operations
        .iter()
        .map(|(_, o)| &o.node.selection_set.node);
    let fragments = document
        .fragments
        .values()
        .map(|f| &f.node.selection_set.node);
    for selections in operations.chain(fragments) {
        refuse_nul_in(selections)?;
    }
    Ok(())
}

fn refuse_nul_in(selections: &SelectionSet) -> ServerResult<()> {
    for selection in &selections.items {
        match &selection.node {
            Selection::Field(field) => {
                for (name, value) in &field.node.arguments {
                    // Variables are checked as they come (`refuse_nul_variables`).
                    let written = value
                        .node
                        .clone()
                        .into_const_with(|_| Ok::<_, std::convert::Infallible>(ConstValue::Null));
                    if written.is_ok_and(|value| const_has_nul(&value)) {
                        return Err(nul_refused(&name.node));
                    }
                }
                refuse_nul_in(&field.node.selection_set.node)?;
            }
            Selection::InlineFragment(fragment) => {
                refuse_nul_in(&fragment.node.selection_set.node)?
            }
            Selection::FragmentSpread(_) => {}
        }
    }
    Ok(())
}

fn const_has_nul(value: &ConstValue) -> bool {
    match value {
        ConstValue::String(text) => text.contains('\0'),
        ConstValue::List(items) => items.iter().any(const_has_nul),
        ConstValue::Object(fields) => fields
            .iter()
            .any(|(key, value)| key.contains('\0') || const_has_nul(value)),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use async_graphql::{EmptyMutation, EmptySubscription, Object, Schema};

    use super::*;

    struct Query;

    #[Object]
    impl Query {
        async fn answer(&self) -> i32 {
            42
        }
    }

    #[tokio::test]
    async fn only_documents_that_validated_are_kept() {
        let limits = QueryLimits {
            max_depth: 10,
            max_complexity: 100,
        };
        let cache = ParseCache::new(limits, Duration::from_secs(30));
        let schema = Schema::build(Query, EmptyMutation, EmptySubscription)
            .extension(cache.clone())
            .finish();
        for n in 0..50 {
            let invalid = schema.execute(format!("{{ unknown{n} }}")).await;
            assert!(invalid.is_err());
        }
        assert_eq!(lock(&cache.documents).by_query.len(), 0);
        for _ in 0..2 {
            let valid = schema.execute("{ answer }").await;
            assert!(valid.is_ok(), "{valid:?}");
        }
        assert_eq!(lock(&cache.documents).by_query.len(), 1);
        let nul = schema
            .execute(
                async_graphql::Request::new("query($s: String) { answer }")
                    .variables(Variables::from_json(serde_json::json!({ "s": "a\u{0}b" }))),
            )
            .await;
        let code = |response: &async_graphql::Response| {
            let extensions = response.errors[0].extensions.as_ref().unwrap();
            extensions.get("code").unwrap().to_string()
        };
        assert_eq!(code(&nul), "\"BAD_USER_INPUT\"");
        let default = schema
            .execute("query($s: String = \"a\\u0000b\") { answer }")
            .await;
        assert_eq!(code(&default), "\"BAD_USER_INPUT\"", "{default:?}");
    }
}
