//! Adding reported usage (tokens, cost, API calls …) to an execution's metrics, from
//! `recordMetrics` and from step reports. Counters add up; scores and custom values
//! replace.

use std::collections::BTreeMap;

use async_graphql::Json;
use serde_json::{Value, json};

use super::inputs::{MetricsInput, StepMetricsInput};
use super::validate;
use super::values::{CostBreakdown, Metrics};
use crate::error::{AppError, AppResult};

/// Adds a count, saturating at the largest GraphQL `Int`.
fn add_i(total: &mut Option<i64>, value: Option<i64>) {
    if let Some(v) = value {
        *total = Some(
            total
                .unwrap_or(0)
                .saturating_add(v)
                .min(i64::from(i32::MAX)),
        );
    }
}

/// Adds a cost, saturating at `MAX_TOTAL_COST`.
fn add_f(total: &mut Option<f64>, value: Option<f64>) {
    if let Some(v) = value {
        *total = Some(add_cost(total.unwrap_or(0.0), v));
    }
}

fn add_cost(total: f64, value: f64) -> f64 {
    (total + value).min(validate::MAX_TOTAL_COST)
}

fn add_api_calls(metrics: &mut Metrics, service: String, calls: i64) {
    let map = metrics
        .api_calls_by_service
        .get_or_insert_with(|| Json(BTreeMap::new()));
    let total = map.0.entry(service).or_insert(0);
    *total = total.saturating_add(calls).min(i64::from(i32::MAX));
}

/// `recordMetrics`: every value is checked before anything is added.
pub fn record(metrics: &mut Metrics, input: MetricsInput) -> AppResult<()> {
    let tokens_used = validate::non_negative("metrics.tokensUsed", input.tokens_used)?;
    let prompt_tokens = validate::non_negative("metrics.promptTokens", input.prompt_tokens)?;
    let completion_tokens =
        validate::non_negative("metrics.completionTokens", input.completion_tokens)?;
    let model_calls = validate::non_negative("metrics.modelCalls", input.model_calls)?;
    let cost = validate::cost("metrics.cost", input.cost)?;
    let api_calls = validate::non_negative("metrics.apiCalls", input.api_calls)?;
    let breakdown = input
        .cost_breakdown
        .map(|b| parse_breakdown(b.0))
        .transpose()?;
    let by_service = input
        .api_calls_by_service
        .map(|m| parse_calls_by_service(m.0))
        .transpose()?;
    let quality = validate::finite_non_negative("metrics.qualityScore", input.quality_score)?;
    let custom = validate::opt_json("metrics.custom", input.custom)?;

    add_i(&mut metrics.tokens_used, tokens_used);
    add_i(&mut metrics.prompt_tokens, prompt_tokens);
    add_i(&mut metrics.completion_tokens, completion_tokens);
    add_i(&mut metrics.model_calls, model_calls);
    add_f(&mut metrics.cost, cost);
    add_i(&mut metrics.api_calls, api_calls);
    if let Some(add) = breakdown {
        let total = metrics
            .cost_breakdown
            .get_or_insert_with(CostBreakdown::default);
        total.ai = add_cost(total.ai, add.ai);
        total.apis = add_cost(total.apis, add.apis);
        total.compute = add_cost(total.compute, add.compute);
        total.storage = add_cost(total.storage, add.storage);
        total.other = add_cost(total.other, add.other);
    }
    for (service, calls) in by_service.unwrap_or_default() {
        add_api_calls(metrics, service, calls);
    }
    if quality.is_some() {
        metrics.quality_score = quality;
    }
    if custom.is_some() {
        metrics.custom = custom;
    }
    Ok(())
}

/// The metrics a step reports when it completes: the same counters, with its API
/// calls counted under `apiService`.
pub fn record_step(metrics: &mut Metrics, input: StepMetricsInput) -> AppResult<()> {
    let service = validate::opt_short("metrics.apiService", input.api_service)?;
    let by_service = service.map(|s| Json(json!({ s: input.api_calls.unwrap_or(0) })));
    record(
        metrics,
        MetricsInput {
            tokens_used: input.tokens_used,
            prompt_tokens: input.prompt_tokens,
            completion_tokens: input.completion_tokens,
            model_calls: input.model_calls,
            cost: input.cost,
            api_calls: input.api_calls,
            api_calls_by_service: by_service,
            ..Default::default()
        },
    )
}

fn parse_breakdown(value: Value) -> AppResult<CostBreakdown> {
    let breakdown: CostBreakdown = serde_json::from_value(value)
        .map_err(|e| AppError::bad_input("metrics.costBreakdown", e.to_string()))?;
    for v in [
        breakdown.ai,
        breakdown.apis,
        breakdown.compute,
        breakdown.storage,
        breakdown.other,
    ] {
        validate::cost("metrics.costBreakdown", Some(v))?;
    }
    Ok(breakdown)
}

fn parse_calls_by_service(value: Value) -> AppResult<BTreeMap<String, i64>> {
    let field = "metrics.apiCallsByService";
    let map: BTreeMap<String, i64> = serde_json::from_value(value)
        .map_err(|_| AppError::bad_input(field, "must be an object of service name → count"))?;
    if map.values().any(|v| *v < 0) || map.len() > validate::MAX_LIST {
        return Err(AppError::bad_input(
            field,
            "counts must be ≥ 0, at most 100 services",
        ));
    }
    Ok(map)
}
