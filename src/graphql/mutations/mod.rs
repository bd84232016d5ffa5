//! The mutation root, merged from one object per family of operations. Every
//! mutation is an adapter: it takes the authenticated caller and its arguments, makes
//! one call to the service (which authorises, applies the domain rule, saves and
//! publishes) and maps the answer.

mod claims;
mod flow_control;
mod lifecycle;
mod reports;
mod schedules;
mod steps;

use async_graphql::MergedObject;

#[derive(MergedObject, Default)]
#[graphql(name = "Mutation")]
pub struct MutationRoot(
    lifecycle::LifecycleMutations,
    steps::StepMutations,
    reports::ReportMutations,
    claims::ClaimMutations,
    flow_control::FlowControlMutations,
    schedules::ScheduleMutations,
);
