//! Limits on what clients may send, and the parsed types that prove a value passed
//! them ("parse, don't validate"). Every failure is a `BAD_USER_INPUT` that names the
//! field.

use async_graphql::{ID, Json};
use serde_json::Value;

use crate::error::{AppError, AppResult};

/// Ids, names, tags and other one-line strings.
pub const MAX_SHORT: usize = 256;
/// Messages, summaries, stacks.
pub const MAX_TEXT: usize = 64 * 1024;
/// One JSON value, serialized.
pub const MAX_JSON_BYTES: usize = 256 * 1024;
/// Items in a list of short strings (tags, capabilities, artifacts).
pub const MAX_LIST: usize = 100;
pub const MAX_STEPS: usize = 1000;
pub const MAX_TIMEOUT_MS: i64 = 86_400_000;
/// Why a string holding NUL is refused.
pub const NUL_REFUSED: &str = "must not contain the NUL character (\\u0000)";

/// Refuses text holding the NUL character, which Postgres stores in neither text
/// nor JSON (and SQLite would store only to hand it to clients that cut it short).
pub fn no_nul(field: &str, value: &str) -> AppResult<()> {
    if value.contains('\0') {
        return Err(AppError::bad_input(field, NUL_REFUSED));
    }
    Ok(())
}

/// Whether any string of `value`, key or value, holds the NUL character.
pub fn json_has_nul(value: &Value) -> bool {
    match value {
        Value::String(text) => text.contains('\0'),
        Value::Array(items) => items.iter().any(json_has_nul),
        Value::Object(fields) => fields
            .iter()
            .any(|(key, value)| key.contains('\0') || json_has_nul(value)),
        _ => false,
    }
}

pub fn short(field: &str, value: String) -> AppResult<String> {
    no_nul(field, &value)?;
    if value.is_empty() {
        return Err(AppError::bad_input(field, "must not be empty"));
    }
    if value.len() > MAX_SHORT {
        return Err(AppError::bad_input(
            field,
            format!("at most {MAX_SHORT} bytes"),
        ));
    }
    Ok(value)
}

pub fn opt_short(field: &str, value: Option<String>) -> AppResult<Option<String>> {
    value.map(|v| short(field, v)).transpose()
}

pub fn id(field: &str, value: ID) -> AppResult<ID> {
    short(field, value.0).map(ID)
}

pub fn opt_id(field: &str, value: Option<ID>) -> AppResult<Option<ID>> {
    value.map(|v| id(field, v)).transpose()
}

pub fn text(field: &str, value: String) -> AppResult<String> {
    no_nul(field, &value)?;
    if value.len() > MAX_TEXT {
        return Err(AppError::bad_input(
            field,
            format!("at most {MAX_TEXT} bytes"),
        ));
    }
    Ok(value)
}

pub fn short_list(field: &str, values: &[String]) -> AppResult<()> {
    if values.len() > MAX_LIST {
        return Err(AppError::bad_input(
            field,
            format!("at most {MAX_LIST} items"),
        ));
    }
    for value in values {
        short(field, value.clone())?;
    }
    Ok(())
}

pub fn json(field: &str, value: Json<Value>) -> AppResult<Json<Value>> {
    storable_json(field, &value.0)?;
    Ok(value)
}

/// A JSON value the database stores: at most `MAX_JSON_BYTES` serialized, and no
/// NUL character in any string.
pub fn storable_json(field: &str, value: &Value) -> AppResult<()> {
    let size = serde_json::to_vec(value)
        .map(|b| b.len())
        .unwrap_or(usize::MAX);
    if size > MAX_JSON_BYTES {
        return Err(AppError::bad_input(
            field,
            format!("JSON of {size} bytes; at most {MAX_JSON_BYTES}"),
        ));
    }
    if json_has_nul(value) {
        return Err(AppError::bad_input(field, NUL_REFUSED));
    }
    Ok(())
}

pub fn opt_json(field: &str, value: Option<Json<Value>>) -> AppResult<Option<Json<Value>>> {
    value.map(|v| json(field, v)).transpose()
}

/// HTTP headers to send: an object of header names to string values that HTTP
/// allows (no CR or LF, which would split the request), at most `MAX_LIST`.
pub fn http_headers(field: &str, value: Option<Json<Value>>) -> AppResult<Option<Value>> {
    use reqwest::header::{HeaderName, HeaderValue};
    let Some(Json(value)) = opt_json(field, value)? else {
        return Ok(None);
    };
    let Value::Object(headers) = &value else {
        return Err(AppError::bad_input(
            field,
            "an object of header names to values",
        ));
    };
    if headers.len() > MAX_LIST {
        return Err(AppError::bad_input(
            field,
            format!("at most {MAX_LIST} headers"),
        ));
    }
    for (name, header) in headers {
        let field = format!("{field}.{name}");
        if HeaderName::from_bytes(name.as_bytes()).is_err() {
            return Err(AppError::bad_input(field, "is not an HTTP header name"));
        }
        let valid = header
            .as_str()
            .is_some_and(|v| HeaderValue::from_str(v).is_ok());
        if !valid {
            return Err(AppError::bad_input(
                field,
                "must be a string of visible characters (no CR, LF or other control characters)",
            ));
        }
    }
    Ok(Some(value))
}

pub fn int_range(field: &str, value: i32, min: i32, max: i32) -> AppResult<i32> {
    if value < min || value > max {
        return Err(AppError::bad_input(
            field,
            format!("{value} is outside {min}..={max}"),
        ));
    }
    Ok(value)
}

/// A page size or result limit: `default` when absent, else within `min..=max`.
pub fn limit(field: &str, value: Option<i32>, default: i32, min: i32, max: i32) -> AppResult<u64> {
    int_range(field, value.unwrap_or(default), min, max).map(|v| v as u64)
}

pub fn non_negative(field: &str, value: Option<i32>) -> AppResult<Option<i64>> {
    value
        .map(|v| int_range(field, v, 0, i32::MAX).map(i64::from))
        .transpose()
}

pub fn finite_non_negative(field: &str, value: Option<f64>) -> AppResult<Option<f64>> {
    match value {
        Some(v) if !v.is_finite() || v < 0.0 => {
            Err(AppError::bad_input(field, "must be a finite number ≥ 0"))
        }
        other => Ok(other),
    }
}

/// One report's cost: at most a trillion (dollars). Totals add up to at most
/// `MAX_TOTAL_COST`, so that sums over any number of executions stay finite.
pub const MAX_COST: f64 = 1e12;
pub const MAX_TOTAL_COST: f64 = 1e15;

pub fn cost(field: &str, value: Option<f64>) -> AppResult<Option<f64>> {
    match finite_non_negative(field, value)? {
        Some(v) if v > MAX_COST => Err(AppError::bad_input(field, format!("at most {MAX_COST:e}"))),
        other => Ok(other),
    }
}

/// Tags: short strings, at most `MAX_LIST`, duplicates dropped, order kept.
pub fn tags(field: &str, tags: Vec<String>) -> AppResult<Vec<String>> {
    short_list(field, &tags)?;
    let mut unique = Vec::with_capacity(tags.len());
    for tag in tags {
        if !unique.contains(&tag) {
            unique.push(tag);
        }
    }
    Ok(unique)
}

/// Progress in percent: finite, 0..=100.
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct Progress(pub f64);

impl Progress {
    pub fn parse(field: &str, value: f64) -> AppResult<Self> {
        if !value.is_finite() || !(0.0..=100.0).contains(&value) {
            return Err(AppError::bad_input(field, "must be a number in 0..=100"));
        }
        Ok(Progress(value))
    }
}

/// A timeout in milliseconds: 1 ms ..= 24 h.
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct TimeoutMs(pub i64);

impl TimeoutMs {
    pub fn parse(field: &str, value: i32) -> AppResult<Self> {
        let value = i64::from(value);
        if !(1..=MAX_TIMEOUT_MS).contains(&value) {
            return Err(AppError::bad_input(
                field,
                format!("{value} is outside 1..={MAX_TIMEOUT_MS}"),
            ));
        }
        Ok(TimeoutMs(value))
    }
}

/// An error code in SCREAMING_SNAKE_CASE, e.g. `API_TIMEOUT`.
#[derive(Clone, Debug, PartialEq)]
pub struct ErrorCode(pub String);

impl ErrorCode {
    pub fn parse(field: &str, code: String) -> AppResult<Self> {
        let mut chars = code.chars();
        let starts_with_letter = chars.next().is_some_and(|c| c.is_ascii_uppercase());
        let rest_ok = chars.all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
        if !starts_with_letter || !rest_ok || code.len() > 64 {
            return Err(AppError::bad_input(
                field,
                format!("`{code}` is not a SCREAMING_SNAKE_CASE code of at most 64 characters"),
            ));
        }
        Ok(ErrorCode(code))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_rejects_out_of_range_and_nan() {
        assert!(Progress::parse("p", 100.0).is_ok());
        assert!(Progress::parse("p", 0.0).is_ok());
        for bad in [-0.1, 100.1, f64::NAN, f64::INFINITY] {
            assert!(Progress::parse("p", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn error_codes_must_be_screaming_snake() {
        assert!(ErrorCode::parse("c", "API_TIMEOUT".into()).is_ok());
        assert!(ErrorCode::parse("c", "E2".into()).is_ok());
        for bad in ["", "api_timeout", "_X", "2X", "A-B", "Api"] {
            assert!(ErrorCode::parse("c", bad.into()).is_err(), "{bad}");
        }
    }
}
