//! Adding reported usage (tokens, cost, API calls …) to an execution's metrics, from
//! `recordMetrics` and from step reports. Counters add up; scores and custom values
//! replace.

use std::collections::BTreeMap;

use async_graphql::Json;
use serde_json::Value;

use super::inputs::{MetricsInput, StepMetricsInput};
use super::types::{CostBreakdown, Metrics};
use super::validate;
use crate::error::{AppError, AppResult};

fn add_i(total: &mut Option<i64>, value: Option<i64>) {
    if let Some(v) = value {
        *total = Some(total.unwrap_or(0).saturating_add(v));
    }
}

fn add_f(total: &mut Option<f64>, value: Option<f64>) {
    if let Some(v) = value {
        *total = Some(total.unwrap_or(0.0) + v);
    }
}

fn add_api_calls(metrics: &mut Metrics, service: String, calls: i64) {
    let map = metrics
        .api_calls_by_service
        .get_or_insert_with(|| Json(BTreeMap::new()));
    *map.0.entry(service).or_insert(0) += calls;
}

/// The usage counters both inputs share, checked.
struct Usage {
    tokens_used: Option<i64>,
    prompt_tokens: Option<i64>,
    completion_tokens: Option<i64>,
    model_calls: Option<i64>,
    cost: Option<f64>,
    api_calls: Option<i64>,
}

impl Usage {
    fn add_to(self, metrics: &mut Metrics) {
        add_i(&mut metrics.tokens_used, self.tokens_used);
        add_i(&mut metrics.prompt_tokens, self.prompt_tokens);
        add_i(&mut metrics.completion_tokens, self.completion_tokens);
        add_i(&mut metrics.model_calls, self.model_calls);
        add_f(&mut metrics.cost, self.cost);
        add_i(&mut metrics.api_calls, self.api_calls);
    }
}

#[allow(clippy::too_many_arguments)]
fn usage(
    field: &str,
    tokens_used: Option<i32>,
    prompt_tokens: Option<i32>,
    completion_tokens: Option<i32>,
    model_calls: Option<i32>,
    cost: Option<f64>,
    api_calls: Option<i32>,
) -> AppResult<Usage> {
    Ok(Usage {
        tokens_used: validate::non_negative(&format!("{field}.tokensUsed"), tokens_used)?,
        prompt_tokens: validate::non_negative(&format!("{field}.promptTokens"), prompt_tokens)?,
        completion_tokens: validate::non_negative(
            &format!("{field}.completionTokens"),
            completion_tokens,
        )?,
        model_calls: validate::non_negative(&format!("{field}.modelCalls"), model_calls)?,
        cost: validate::finite_non_negative(&format!("{field}.cost"), cost)?,
        api_calls: validate::non_negative(&format!("{field}.apiCalls"), api_calls)?,
    })
}

/// `recordMetrics`.
pub fn record(metrics: &mut Metrics, input: MetricsInput) -> AppResult<()> {
    let usage = usage(
        "metrics",
        input.tokens_used,
        input.prompt_tokens,
        input.completion_tokens,
        input.model_calls,
        input.cost,
        input.api_calls,
    )?;
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

    usage.add_to(metrics);
    if let Some(add) = breakdown {
        let total = metrics
            .cost_breakdown
            .get_or_insert_with(CostBreakdown::default);
        total.ai += add.ai;
        total.apis += add.apis;
        total.compute += add.compute;
        total.storage += add.storage;
        total.other += add.other;
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

/// The metrics a step reports when it completes.
pub fn record_step(metrics: &mut Metrics, input: StepMetricsInput) -> AppResult<()> {
    let usage = usage(
        "metrics",
        input.tokens_used,
        input.prompt_tokens,
        input.completion_tokens,
        input.model_calls,
        input.cost,
        input.api_calls,
    )?;
    let service = validate::opt_short("metrics.apiService", input.api_service)?;
    let calls = usage.api_calls.unwrap_or(0);
    usage.add_to(metrics);
    if let Some(service) = service {
        add_api_calls(metrics, service, calls);
    }
    Ok(())
}

fn parse_breakdown(value: Value) -> AppResult<CostBreakdown> {
    let breakdown: CostBreakdown = serde_json::from_value(merge_defaults(value))
        .map_err(|e| AppError::bad_input("metrics.costBreakdown", e.to_string()))?;
    for v in [
        breakdown.ai,
        breakdown.apis,
        breakdown.compute,
        breakdown.storage,
        breakdown.other,
    ] {
        validate::finite_non_negative("metrics.costBreakdown", Some(v))?;
    }
    Ok(breakdown)
}

/// Missing breakdown keys count as 0.
fn merge_defaults(value: Value) -> Value {
    let mut base = serde_json::to_value(CostBreakdown::default()).unwrap_or_default();
    if let (Some(base), Value::Object(given)) = (base.as_object_mut(), value.clone()) {
        base.extend(given);
        return Value::Object(base.clone());
    }
    value
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
