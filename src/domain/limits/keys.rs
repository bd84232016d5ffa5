//! The keys a step counts against. A limit's key is a template: `customer:{customerId}`,
//! `service:{serviceId}` or `provider:{providerId}` give every customer (service,
//! provider) a limit of its own, and any other key is taken literally: it names one
//! customer (`customer:acme`) or a `concurrencyKey` that executions and steps carry
//! (`openai`). Where a template and a literal key both name a step's key, the literal
//! one is the limit (one customer's own plan).

use std::fmt;

use crate::domain::records::{Execution, Step};
use crate::error::{AppError, AppResult};

/// The execution fields a template may name, with the key's prefix.
const FIELDS: [(&str, &str); 3] = [
    ("customerId", "customer"),
    ("serviceId", "service"),
    ("providerId", "provider"),
];

/// The longest key accepted.
const MAX_KEY: usize = 200;

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum KeyTemplate {
    /// `<prefix>:{<field>}`: one key per value of the field.
    Each { prefix: &'static str },
    /// A key taken as it is.
    Literal(String),
}

impl KeyTemplate {
    /// Parses `key`; `field` names it in errors. A `{…}` anywhere but as the whole
    /// part after the prefix, or naming another field, is refused.
    pub fn parse(field: &str, key: &str) -> AppResult<KeyTemplate> {
        let key = key.trim();
        crate::domain::validate::no_nul(field, key)?;
        if key.is_empty() || key.len() > MAX_KEY {
            return Err(AppError::bad_input(
                field,
                format!("a key has 1 to {MAX_KEY} characters"),
            ));
        }
        if key.contains(char::is_whitespace) {
            return Err(AppError::bad_input(field, "a key has no spaces"));
        }
        if !key.contains(['{', '}']) {
            return Ok(KeyTemplate::Literal(key.to_owned()));
        }
        FIELDS
            .iter()
            .find(|(name, prefix)| key == format!("{prefix}:{{{name}}}"))
            .map(|(_, prefix)| KeyTemplate::Each { prefix })
            .ok_or_else(|| {
                AppError::bad_input(
                    field,
                    format!(
                        "unknown key template `{key}`: a template is one of \
                         customer:{{customerId}}, service:{{serviceId}}, provider:{{providerId}}"
                    ),
                )
            })
    }

    /// Whether this template gives `key` its limit.
    pub fn covers(&self, key: &str) -> bool {
        match self {
            KeyTemplate::Each { prefix } => key
                .strip_prefix(prefix)
                .is_some_and(|rest| rest.starts_with(':')),
            KeyTemplate::Literal(literal) => literal == key,
        }
    }
}

impl fmt::Display for KeyTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyTemplate::Each { prefix } => {
                let (name, _) = FIELDS.iter().find(|(_, p)| p == prefix).expect("known");
                write!(f, "{prefix}:{{{name}}}")
            }
            KeyTemplate::Literal(key) => f.write_str(key),
        }
    }
}

/// Every key `step` of `execution` may count against: its execution's, and the
/// step's concurrency key.
pub fn keys_of(execution: &Execution, step: &Step) -> Vec<String> {
    let mut keys = execution_keys(execution);
    keys.extend(step.concurrency_key.iter().cloned());
    keys.sort_unstable();
    keys.dedup();
    keys
}

/// Every key `execution` counts against: its customer's, service's and provider's,
/// and its concurrency key.
pub fn execution_keys(execution: &Execution) -> Vec<String> {
    let owners = [
        ("customer", execution.customer_id.as_deref()),
        ("service", Some(execution.service_id.as_str())),
        ("provider", execution.provider_id.as_deref()),
    ];
    let mut keys: Vec<String> = owners
        .into_iter()
        .filter_map(|(prefix, id)| id.map(|id| format!("{prefix}:{id}")))
        .collect();
    keys.extend(execution.concurrency_key.iter().cloned());
    keys.sort_unstable();
    keys.dedup();
    keys
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_name_known_fields_and_literals_are_taken_as_they_are() {
        let each = KeyTemplate::parse("key", "customer:{customerId}").unwrap();
        assert!(each.covers("customer:acme"));
        assert!(!each.covers("customers:acme"));
        assert!(!each.covers("service:acme"));
        assert_eq!(each.to_string(), "customer:{customerId}");
        let literal = KeyTemplate::parse("key", " openai ").unwrap();
        assert_eq!(literal, KeyTemplate::Literal("openai".into()));
        assert!(literal.covers("openai"));
        for bad in [
            "customer:{tenant}",
            "{customerId}",
            "a{b",
            "",
            "service:{customerId}",
        ] {
            let error = KeyTemplate::parse("key", bad).unwrap_err();
            assert_eq!(error.code(), "BAD_USER_INPUT", "{bad}");
        }
    }
}
