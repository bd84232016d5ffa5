//! The query depth and complexity limits (`--max-query-depth`,
//! `--max-query-complexity`), enforced on what a query asks of the data and not on
//! introspection: graphql-js' standard introspection query (what GraphiQL and every
//! codegen tool send) nests `ofType` far deeper than any real query, and asks for
//! nothing but the schema. What `__schema` and `__type` select is not counted: each
//! counts one towards complexity (so that a query cannot repeat it under thousands
//! of aliases for free), `__typename` nothing. Every other field counts one level
//! of depth, fragments as if written inline.
//!
//! Complexity is what a query costs to answer: a field costs one, and a field that
//! reads the database costs what a query does (`DATABASE_READ`, `BATCHED_READ`);
//! a paged field (`first`, `last`, `limit`, or its default page) pays for its
//! selection once per item it may return. So a page of pages costs their product,
//! and a query cannot ask for thousands of database reads under aliases.

use std::collections::HashMap;

use async_graphql::Positioned;
use async_graphql::parser::types::{
    ExecutableDocument, Field, OperationType, Selection, SelectionSet, VariableDefinition,
};
use async_graphql::{ErrorExtensions, Name, ServerError, ServerResult, Variables};
use async_graphql_value::{ConstValue, Value};

/// The code of a refusal for depth or complexity.
pub const QUERY_TOO_COMPLEX: &str = "QUERY_TOO_COMPLEX";

#[derive(Clone, Copy)]
pub struct QueryLimits {
    pub max_depth: usize,
    pub max_complexity: usize,
}

/// What a selection asks for: how deep it nests and how many fields it names.
#[derive(Clone, Copy, Default)]
struct Cost {
    depth: usize,
    complexity: usize,
}

/// For a field of a connection, whether it is paid once per item (`nodes`,
/// `edges`) or once (`totalCount`, `pageInfo`); `None` for any other field.
fn of_connection(name: &str) -> Option<bool> {
    match name {
        "nodes" | "edges" => Some(true),
        "totalCount" | "pageInfo" => Some(false),
        _ => None,
    }
}

/// What a root field that runs queries of its own costs (`executions`, one
/// execution, the analytics) and what a count costs (`totalCount`).
const DATABASE_READ: usize = 1000;
/// What a field read for many executions at once (through a DataLoader) costs.
const BATCHED_READ: usize = 10;

/// What counting a nested connection's items costs (one query per connection, as
/// many as its parent page has items, each over one execution's rows).
const NESTED_COUNT: usize = 100;

/// A field's own cost and the page it returns when it names none: (cost, page).
/// `level` is 0 for the operation's own fields, 1 for theirs, and so on: `node`
/// reads the database only at the root (an edge's `node` is in memory), and a
/// `totalCount` below the root's connections counts one execution's rows.
fn field_cost(name: &str, level: usize) -> (usize, usize) {
    match name {
        "executions" => (DATABASE_READ, 50),
        "executionStats" => (DATABASE_READ, 100),
        "errorDistribution" => (DATABASE_READ, 20),
        "stepStats" => (DATABASE_READ, 50),
        "node" if level == 0 => (DATABASE_READ, 1),
        "totalCount" if level > 1 => (NESTED_COUNT, 1),
        "execution" | "totalCount" | "schedule" => (DATABASE_READ, 1),
        "schedules" => (DATABASE_READ, 100),
        "lastExecution" => (BATCHED_READ, 1),
        "logs" | "events" => (BATCHED_READ, 100),
        // Read per webhook, up to 20 webhooks per execution.
        "deliveries" => (NESTED_COUNT, 20),
        "webhooks" => (BATCHED_READ, 20),
        "steps" | "checkpoints" | "latestCheckpoint" => (BATCHED_READ, 1),
        _ => (1, 1),
    }
}

impl QueryLimits {
    /// Refuses a document any of whose operations goes over a limit, pages sized by
    /// `variables` where they name them. `Ok(true)` when a page size came from the
    /// variables, so that the same document needs checking again with others.
    pub fn check(
        &self,
        document: &ExecutableDocument,
        variables: &Variables,
    ) -> ServerResult<bool> {
        let mut variable_pages = false;
        for (_, operation) in document.operations.iter() {
            let mut walk = Walk {
                document,
                variables,
                defaults: &operation.node.variable_definitions,
                writes: operation.node.ty == OperationType::Mutation,
                variable_pages: false,
                limit: self.max_complexity,
                fragments: Vec::new(),
                costs: HashMap::new(),
            };
            let cost = walk.cost(&operation.node.selection_set.node, 1, 0);
            variable_pages |= walk.variable_pages;
            if cost.depth > self.max_depth {
                return Err(too_complex(format!(
                    "Query is nested too deep: {} levels, at most {} (--max-query-depth).",
                    cost.depth, self.max_depth
                )));
            }
            if cost.complexity > self.max_complexity {
                return Err(too_complex(format!(
                    "Query is too complex: it costs more than {} (--max-query-complexity): \
                     ask for smaller pages, fewer fields or fewer aliases.",
                    self.max_complexity
                )));
            }
        }
        Ok(variable_pages)
    }
}

fn too_complex(message: String) -> ServerError {
    async_graphql::Error::new(message)
        .extend_with(|_, extensions| extensions.set("code", QUERY_TOO_COMPLEX))
        .into_server_error(Default::default())
}

struct Walk<'a> {
    document: &'a ExecutableDocument,
    variables: &'a Variables,
    /// The operation's variables, with the defaults of those not given.
    defaults: &'a [Positioned<VariableDefinition>],
    /// A mutation: each of its root fields is a write, costed as a database read.
    writes: bool,
    /// Whether a page size came from `variables`.
    variable_pages: bool,
    /// Counting stops past this complexity: the query is refused anyway, and a
    /// fragment spread many times over cannot make the walk itself expensive.
    limit: usize,
    /// The fragments being walked, so that a cycle (refused by validation later)
    /// ends the walk instead of recursing forever.
    fragments: Vec<&'a Name>,
    /// Each fragment's cost at each level and page, walked once however often it
    /// is spread.
    costs: HashMap<(&'a Name, usize, usize), Cost>,
}

impl<'a> Walk<'a> {
    /// The cost of a selection at `level` (0: the operation's own), `items` times
    /// over for the part paid per item: the `nodes` and `edges` of a connection, or
    /// all of a list.
    fn cost(&mut self, selections: &'a SelectionSet, items: usize, level: usize) -> Cost {
        let connection = selections.items.iter().any(|selection| {
            matches!(&selection.node, Selection::Field(f) if of_connection(&f.node.name.node).is_some())
        });
        let mut cost = Cost::default();
        for selection in &selections.items {
            if cost.complexity > self.limit {
                break;
            }
            let (inner, per_item) = match &selection.node {
                Selection::Field(field) if field.node.name.node == "__typename" => continue,
                Selection::Field(field) if field.node.name.node.starts_with("__") => (
                    Cost {
                        depth: 0,
                        complexity: 1,
                    },
                    false,
                ),
                Selection::Field(field) => {
                    let per_item = of_connection(&field.node.name.node).unwrap_or(!connection);
                    (self.field(&field.node, level), per_item)
                }
                // A fragment is part of the selection it is in: its own fields are
                // paid per item or once as if written there.
                Selection::InlineFragment(fragment) => (
                    self.cost(&fragment.node.selection_set.node, items, level),
                    false,
                ),
                Selection::FragmentSpread(spread) => {
                    let name = &spread.node.fragment_name.node;
                    let Some(fragment) = self.document.fragments.get(name) else {
                        continue;
                    };
                    if let Some(known) = self.costs.get(&(name, level, items)) {
                        (*known, false)
                    } else if self.fragments.contains(&name) {
                        continue;
                    } else {
                        self.fragments.push(name);
                        let inner = self.cost(&fragment.node.selection_set.node, items, level);
                        self.fragments.pop();
                        self.costs.insert((name, level, items), inner);
                        (inner, false)
                    }
                }
            };
            let times = if per_item { items } else { 1 };
            cost.depth = cost.depth.max(inner.depth);
            let complexity = times.saturating_mul(inner.complexity);
            cost.complexity = cost.complexity.saturating_add(complexity);
        }
        cost
    }

    /// A field's own cost and its selection's, paid per item it may return.
    fn field(&mut self, field: &'a Field, level: usize) -> Cost {
        let (own, page) = field_cost(&field.name.node, level);
        let own = if level == 0 && self.writes {
            own.max(DATABASE_READ)
        } else {
            own
        };
        let items = self.page(field, page);
        let inner = self.cost(&field.selection_set.node, items, level + 1);
        Cost {
            depth: inner.depth + 1,
            complexity: own.saturating_add(inner.complexity),
        }
    }

    /// A variable's value: the request's, else the operation's default.
    fn variable(&self, name: &Name) -> Option<&'a ConstValue> {
        self.variables.get(name).or_else(|| {
            let defined = self.defaults.iter().find(|d| d.node.name.node == *name)?;
            defined.node.default_value.as_ref().map(|value| &value.node)
        })
    }

    /// How many items `field` may return: its `first`, `last` or `limit`, written
    /// or in a variable, else `page`.
    fn page(&mut self, field: &Field, page: usize) -> usize {
        let named = ["first", "last", "limit"].iter().find_map(|argument| {
            let value = field.get_argument(argument)?;
            let number = match &value.node {
                Value::Variable(name) => match self.variable(name)? {
                    ConstValue::Number(number) => number.as_u64(),
                    _ => None,
                },
                Value::Number(number) => number.as_u64(),
                _ => None,
            };
            number.map(|n| n as usize)
        });
        let variable = |argument: &&str| {
            (field.get_argument(argument)).is_some_and(|v| matches!(v.node, Value::Variable(_)))
        };
        self.variable_pages |= ["first", "last", "limit"].iter().any(variable);
        named.unwrap_or(page)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_graphql::parser::parse_query;

    fn check(query: &str, max_depth: usize, max_complexity: usize) -> Result<(), String> {
        let limits = QueryLimits {
            max_depth,
            max_complexity,
        };
        limits
            .check(&parse_query(query).unwrap(), &Variables::default())
            .map(drop)
            .map_err(|e| e.message)
    }

    #[test]
    fn introspection_is_not_counted() {
        let deep = format!(
            "{{ __schema {{ types {{ {} name {} }} }} }}",
            "fields { type { ofType { ofType {".repeat(3),
            "} } } }".repeat(3)
        );
        assert_eq!(check(&deep, 3, 10), Ok(()));
        assert_eq!(check("{ a { __typename b } }", 2, 2), Ok(()));
    }

    #[test]
    fn depth_counts_fields_through_fragments() {
        let query = "query { a { ...F } } fragment F on T { b { ... on U { c } } }";
        assert_eq!(check(query, 3, 100), Ok(()));
        let refused = check(query, 2, 100).unwrap_err();
        assert!(refused.contains("nested too deep: 3 levels"), "{refused}");
    }

    #[test]
    fn complexity_counts_every_field_once_per_use() {
        let query = "{ a { ...F } b { ...F } } fragment F on T { x y }";
        assert_eq!(check(query, 10, 6), Ok(()));
        let refused = check(query, 10, 5).unwrap_err();
        assert!(refused.contains("too complex"), "{refused}");
    }

    #[test]
    fn introspection_under_many_aliases_is_counted() {
        let aliases: String = (0..20)
            .map(|n| format!("a{n}: __schema {{ types {{ name }} }} "))
            .collect();
        let refused = check(&format!("{{ {aliases} }}"), 3, 10).unwrap_err();
        assert!(refused.contains("too complex"), "{refused}");
    }

    #[test]
    fn fragments_spread_everywhere_are_walked_once() {
        // Ten levels of ten spreads each: 10^10 paths, one walk per fragment.
        let mut query = String::from("{ ...F0 } ");
        for level in 0..10 {
            let spreads = format!("...F{} ", level + 1).repeat(10);
            query.push_str(&format!(
                "fragment F{level} on Query {{ __typename {spreads} }} "
            ));
        }
        query.push_str("fragment F10 on Query { __typename }");
        assert_eq!(check(&query, 10, 10), Ok(()));
    }

    #[test]
    fn a_fragment_cycle_ends_the_walk() {
        let query = "{ a { ...F } } fragment F on T { b { ...F } }";
        assert_eq!(check(query, 10, 10), Ok(()));
    }

    #[test]
    fn pages_multiply_and_reads_cost() {
        let list = "{ executions(first: 500) { totalCount edges { cursor node { id } } } }";
        assert_eq!(
            check(list, 10, 4_000),
            Ok(()),
            "an edge's node reads nothing"
        );
        let nested =
            "{ executions(first: 10) { nodes { logs(first: 100) { nodes { message } } } } }";
        let refused = check(nested, 10, 2_000).unwrap_err();
        assert!(refused.contains("costs more than 2000"), "{refused}");
        assert_eq!(check(nested, 10, 3_200), Ok(()));
        let fragment = "{ executions { ...Page } } fragment Page on ExecutionConnection { totalCount nodes { id } }";
        assert_eq!(
            check(fragment, 10, 2_100),
            Ok(()),
            "a fragment's totalCount is paid once"
        );
        let defaulted = "query($n: Int = 500) { executions(first: $n) { nodes { id } } }";
        assert!(
            check(defaulted, 10, 1_500).is_err(),
            "a default page counts"
        );
        let writes =
            "mutation { a: cancelExecution(id: 1) { id } b: cancelExecution(id: 2) { id } }";
        assert!(
            check(writes, 10, 2_000).is_err(),
            "a mutation's root fields are writes"
        );
        let aliases = "{ a: node(id: 1) { id } b: node(id: 2) { id } }";
        assert!(check(aliases, 10, 2_000).is_err());
        let spread = "{ ...F } fragment F on Query { a: executions { totalCount } b: executions { totalCount } }";
        assert!(
            check(spread, 10, 3_000).is_err(),
            "a root fragment reads as the root"
        );
    }
}
