//! The query depth and complexity limits (`--max-query-depth`,
//! `--max-query-complexity`), enforced on what a query asks of the data and not on
//! introspection: graphql-js' standard introspection query (what GraphiQL and every
//! codegen tool send) nests `ofType` far deeper than any real query, and asks for
//! nothing but the schema. What `__schema` and `__type` select is not counted: each
//! counts one towards complexity (so that a query cannot repeat it under thousands
//! of aliases for free), `__typename` nothing. Every other field counts one towards
//! complexity and one level of depth, fragments as if written inline, as
//! async-graphql's own limits count. The parse cache checks each document once.

use std::collections::HashMap;

use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};
use async_graphql::{ErrorExtensions, Name, ServerError, ServerResult};

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

impl QueryLimits {
    /// Refuses a document any of whose operations goes over a limit.
    pub fn check(&self, document: &ExecutableDocument) -> ServerResult<()> {
        for (_, operation) in document.operations.iter() {
            let mut walk = Walk {
                document,
                limit: self.max_complexity,
                fragments: Vec::new(),
                costs: HashMap::new(),
            };
            let cost = walk.cost(&operation.node.selection_set.node);
            if cost.complexity > self.max_complexity {
                return Err(too_complex(format!(
                    "Query is too complex: it names more than {} fields (--max-query-complexity).",
                    self.max_complexity
                )));
            }
            if cost.depth > self.max_depth {
                return Err(too_complex(format!(
                    "Query is nested too deep: {} levels, at most {} (--max-query-depth).",
                    cost.depth, self.max_depth
                )));
            }
        }
        Ok(())
    }
}

fn too_complex(message: String) -> ServerError {
    async_graphql::Error::new(message)
        .extend_with(|_, extensions| extensions.set("code", QUERY_TOO_COMPLEX))
        .into_server_error(Default::default())
}

struct Walk<'a> {
    document: &'a ExecutableDocument,
    /// Counting stops past this complexity: the query is refused anyway, and a
    /// fragment spread many times over cannot make the walk itself expensive.
    limit: usize,
    /// The fragments being walked, so that a cycle (refused by validation later)
    /// ends the walk instead of recursing forever.
    fragments: Vec<&'a Name>,
    /// Each fragment's cost, walked once however often it is spread.
    costs: HashMap<&'a Name, Cost>,
}

impl<'a> Walk<'a> {
    fn cost(&mut self, selections: &'a SelectionSet) -> Cost {
        let mut cost = Cost::default();
        for selection in &selections.items {
            if cost.complexity > self.limit {
                break;
            }
            let inner = match &selection.node {
                Selection::Field(field) if field.node.name.node == "__typename" => continue,
                Selection::Field(field) if field.node.name.node.starts_with("__") => Cost {
                    depth: 0,
                    complexity: 1,
                },
                Selection::Field(field) => {
                    let inner = self.cost(&field.node.selection_set.node);
                    Cost {
                        depth: inner.depth + 1,
                        complexity: inner.complexity + 1,
                    }
                }
                Selection::InlineFragment(fragment) => self.cost(&fragment.node.selection_set.node),
                Selection::FragmentSpread(spread) => {
                    let name = &spread.node.fragment_name.node;
                    let Some(fragment) = self.document.fragments.get(name) else {
                        continue;
                    };
                    if let Some(known) = self.costs.get(name) {
                        *known
                    } else if self.fragments.contains(&name) {
                        continue;
                    } else {
                        self.fragments.push(name);
                        let inner = self.cost(&fragment.node.selection_set.node);
                        self.fragments.pop();
                        self.costs.insert(name, inner);
                        inner
                    }
                }
            };
            cost.depth = cost.depth.max(inner.depth);
            cost.complexity += inner.complexity;
        }
        cost
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
            .check(&parse_query(query).unwrap())
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
}
