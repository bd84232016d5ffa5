//! The steps of an execution as a dependency graph: parsing the client's step list
//! (unique ids, known dependencies, no cycles, at most `MAX_STEPS`), resolving
//! `dependsOn: null` to "the previous step", and answering which steps are ready.

use std::borrow::Borrow;
use std::collections::{BTreeSet, HashMap, HashSet};

use super::inputs::StepInput;
use super::records::Step;
use super::status::StepStatus;
use super::validate::{self, MAX_STEPS, TimeoutMs};
use super::values::StepHandler;
use crate::error::{AppError, AppResult};

/// Steps of this kind wait for an agent, a person or a client; every other kind is
/// run by a worker.
pub const EXTERNAL: &str = "external";

/// The handler kinds a step may name: `external` (claimed by agents and people) and
/// every kind some worker runs. A kind nobody runs would wait forever, so it is
/// refused when the step is created.
#[derive(Clone, Debug, PartialEq)]
pub struct StepKinds(BTreeSet<String>);

impl StepKinds {
    /// `external` and `kinds`.
    pub fn new(kinds: impl IntoIterator<Item = String>) -> Self {
        let mut known: BTreeSet<String> = kinds.into_iter().collect();
        known.insert(EXTERNAL.to_owned());
        StepKinds(known)
    }

    fn check(&self, field: &str, kind: &str) -> AppResult<()> {
        if self.0.contains(kind) {
            return Ok(());
        }
        let known: Vec<&str> = self.0.iter().map(String::as_str).collect();
        Err(AppError::bad_input(
            field,
            format!(
                "no worker runs steps of kind `{kind}`; known kinds: {} (declare kinds that \
                 only separate workers run with --handler-kinds)",
                known.join(", ")
            ),
        ))
    }
}

/// A checked list of steps, in the client's order.
#[derive(Clone, Debug, PartialEq)]
pub struct StepGraph(pub Vec<Step>);

impl StepGraph {
    pub fn parse(inputs: Vec<StepInput>, kinds: &StepKinds) -> AppResult<Self> {
        if inputs.len() > MAX_STEPS {
            return Err(AppError::bad_input(
                "input.steps",
                format!("{} steps; at most {MAX_STEPS}", inputs.len()),
            ));
        }
        let mut steps: Vec<Step> = Vec::with_capacity(inputs.len());
        let mut seen = HashSet::new();
        for (index, input) in inputs.into_iter().enumerate() {
            let field = format!("input.steps[{index}]");
            let id = validate::id(&format!("{field}.id"), input.id)?.0;
            if !seen.insert(id.clone()) {
                return Err(AppError::bad_input(
                    format!("{field}.id"),
                    format!("duplicate step id `{id}`"),
                ));
            }
            let depends_on = match input.depends_on {
                None => steps.last().map(|s| vec![s.id.clone()]).unwrap_or_default(),
                Some(ids) => ids.into_iter().map(|d| d.0).collect(),
            };
            let handler = match input.handler {
                None => StepHandler {
                    kind: EXTERNAL.into(),
                    config: None,
                },
                Some(h) => {
                    let kind_field = format!("{field}.handler.kind");
                    let kind = validate::short(&kind_field, h.kind)?;
                    kinds.check(&kind_field, &kind)?;
                    StepHandler {
                        kind,
                        config: validate::opt_json(&format!("{field}.handler.config"), h.config)?,
                    }
                }
            };
            steps.push(Step {
                id,
                name: validate::short(&format!("{field}.name"), input.name)?,
                index: index as i32,
                status: StepStatus::Pending,
                depends_on,
                handler,
                assignee: input
                    .assignee
                    .map(|a| a.parse(&format!("{field}.assignee")))
                    .transpose()?,
                input: validate::opt_json(&format!("{field}.input"), input.input)?,
                output: None,
                error: None,
                started_at: None,
                completed_at: None,
                duration_ms: None,
                timeout_ms: input
                    .timeout_ms
                    .map(|t| TimeoutMs::parse(&format!("{field}.timeoutMs"), t).map(|t| t.0))
                    .transpose()?,
                retries: 0,
                attempt: 0,
                metadata: validate::opt_json(&format!("{field}.metadata"), input.metadata)?,
                concurrency_key: validate::opt_short(
                    &format!("{field}.concurrencyKey"),
                    input.concurrency_key,
                )?,
                schedule: Default::default(),
            });
        }
        for (index, step) in steps.iter().enumerate() {
            for dependency in &step.depends_on {
                if !seen.contains(dependency) {
                    return Err(AppError::bad_input(
                        format!("input.steps[{index}].dependsOn"),
                        format!("no step has id `{dependency}`"),
                    ));
                }
            }
        }
        if let Some(step) = first_step_on_a_cycle(&steps) {
            return Err(AppError::bad_input(
                "input.steps",
                format!("dependsOn forms a cycle through step `{step}`"),
            ));
        }
        Ok(StepGraph(steps))
    }
}

/// Kahn's algorithm: whatever cannot be ordered lies on (or behind) a cycle.
fn first_step_on_a_cycle(steps: &[Step]) -> Option<String> {
    let mut waiting: HashMap<&str, usize> = steps
        .iter()
        .map(|s| (s.id.as_str(), s.depends_on.len()))
        .collect();
    let mut ready: Vec<&str> = waiting
        .iter()
        .filter(|(_, n)| **n == 0)
        .map(|(id, _)| *id)
        .collect();
    let mut ordered = 0;
    while let Some(done) = ready.pop() {
        ordered += 1;
        for step in steps {
            if step.depends_on.iter().any(|d| d == done) {
                let count = waiting.get_mut(step.id.as_str())?;
                *count -= 1;
                if *count == 0 {
                    ready.push(&step.id);
                }
            }
        }
    }
    (ordered < steps.len()).then(|| {
        steps
            .iter()
            .find(|s| waiting[s.id.as_str()] > 0)
            .map(|s| s.id.clone())
            .unwrap_or_default()
    })
}

/// The ids of the steps `step` waits for that are not yet completed or skipped.
pub fn unfinished_dependencies<'a, S: Borrow<Step>>(step: &'a Step, steps: &[S]) -> Vec<&'a str> {
    step.depends_on
        .iter()
        .filter(|d| {
            !steps.iter().any(|s| {
                let s = <S as Borrow<Step>>::borrow(s);
                &s.id == *d && s.status.is_done()
            })
        })
        .map(String::as_str)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_graphql::ID;

    fn input(id: &str, depends_on: Option<Vec<&str>>) -> StepInput {
        StepInput {
            id: ID(id.into()),
            name: id.into(),
            depends_on: depends_on.map(|d| d.into_iter().map(|s| ID(s.into())).collect()),
            handler: None,
            assignee: None,
            input: None,
            timeout_ms: None,
            metadata: None,
            concurrency_key: None,
        }
    }

    #[test]
    fn null_means_previous_and_empty_means_none() {
        let graph = StepGraph::parse(
            vec![input("a", None), input("b", None), input("c", Some(vec![]))],
            &StepKinds::new([]),
        )
        .unwrap();
        assert_eq!(graph.0[0].depends_on, Vec::<String>::new());
        assert_eq!(graph.0[1].depends_on, vec!["a"]);
        assert_eq!(graph.0[2].depends_on, Vec::<String>::new());
    }

    #[test]
    fn cycles_and_unknown_dependencies_are_refused() {
        let kinds = StepKinds::new([]);
        let cycle = StepGraph::parse(vec![input("a", Some(vec!["b"])), input("b", None)], &kinds);
        assert!(matches!(cycle, Err(AppError::BadInput { .. })));
        let unknown = StepGraph::parse(vec![input("a", Some(vec!["zz"]))], &kinds);
        assert!(matches!(unknown, Err(AppError::BadInput { .. })));
        let duplicate = StepGraph::parse(vec![input("a", None), input("a", None)], &kinds);
        assert!(matches!(duplicate, Err(AppError::BadInput { .. })));
    }

    #[test]
    fn a_kind_no_worker_runs_is_refused() {
        let mut step = input("a", None);
        step.handler = Some(crate::domain::inputs::StepHandlerInput {
            kind: "nosuch".into(),
            config: None,
        });
        let refused = StepGraph::parse(vec![step.clone()], &StepKinds::new(["echo".into()]));
        let Err(AppError::BadInput { field, message }) = refused else {
            panic!("{refused:?}");
        };
        assert_eq!(field, "input.steps[0].handler.kind");
        assert!(message.contains("echo, external"), "{message}");
        let declared = StepKinds::new(["nosuch".into()]);
        assert!(StepGraph::parse(vec![step], &declared).is_ok());
    }
}
