//! What the unit tests of the rules build on: contract inputs parsed from JSON as
//! the API parses them, a new execution created and settled as the service creates
//! one, and the state a change leaves once settled.

use async_graphql::InputType;
use serde_json::Value;

use super::change::Change;
use super::inputs::CreateExecutionInput;
use super::records::{Execution, Step, Timestamp};
use super::step_graph::StepKinds;
use super::{lifecycle, limits, progress, schedule};

/// `value` as the API would parse it into `T`.
pub fn input<T: InputType>(value: Value) -> T {
    let value = async_graphql::Value::from_json(value).expect("JSON");
    T::parse(Some(value)).unwrap_or_else(|error| {
        panic!(
            "not a valid input: {}",
            error.into_server_error(Default::default()).message
        )
    })
}

/// The execution `create` describes (a `CreateExecutionInput` in JSON), created at
/// `now` with workers for `kinds` and settled as the service settles a create.
pub fn created(create: Value, kinds: &[&str], now: Timestamp) -> Change {
    let input: CreateExecutionInput = input(create);
    let kinds = StepKinds::new(kinds.iter().map(|kind| kind.to_string()));
    let mut change = lifecycle::create(input, None, &kinds, "t", now, true).expect("created");
    schedule::settle_new(&mut change);
    change
}

/// The execution and steps after `change`, settled as the service settles every change.
pub fn after(execution: &Execution, steps: &[Step], mut change: Change) -> (Execution, Vec<Step>) {
    schedule::settle(&mut change, execution, steps);
    limits::account(&mut change, execution, steps, &Default::default());
    let steps = progress::merged(steps, &change.steps);
    (change.execution, steps.into_iter().cloned().collect())
}
