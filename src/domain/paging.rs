//! Paging, parsed: for the list of executions (Relay), the ordering (ties broken by
//! id), which way a request reads it, how many it wants, and its opaque cursor
//! decoded into one value per sort key; for the lists inside an execution (logs,
//! events, deliveries), their size and the log cursor. The store turns a
//! `PageRequest` into a keyset query and writes each row's cursor with `encode`.

use base64::Engine;
use serde_json::Value as Json;

use super::filter::{ExecutionOrder, ExecutionSortField, MAX_PAGE, SortDirection};
use super::validate;
use crate::error::{AppError, AppResult};

/// `first` when a request gives neither `first` nor `last`.
pub const DEFAULT_PAGE: i32 = 50;

/// What one sort key's values are.
#[derive(Copy, Clone, Debug, PartialEq)]
pub enum KeyType {
    Int,
    Float,
    Text,
}

/// One key of the ordering: a sortable field, or (last) the id that breaks ties.
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct SortKey {
    pub field: Option<ExecutionSortField>,
    pub direction: SortDirection,
}

impl SortKey {
    pub fn value_type(&self) -> KeyType {
        use ExecutionSortField as F;
        match self.field {
            None | Some(F::Status) => KeyType::Text,
            Some(F::Progress | F::Cost) => KeyType::Float,
            Some(_) => KeyType::Int,
        }
    }
}

/// A cursor's value of one sort key.
#[derive(Clone, Debug, PartialEq)]
pub enum KeyValue {
    Int(i64),
    Float(f64),
    Text(String),
}

/// The keys a list is ordered by: the given ones (newest first when none are), then
/// the id in the first key's direction.
pub fn ordering(order: &[ExecutionOrder]) -> Vec<SortKey> {
    let mut keys: Vec<SortKey> = (order.iter())
        .map(|o| SortKey {
            field: Some(o.field),
            direction: o.direction,
        })
        .collect();
    if keys.is_empty() {
        keys.push(SortKey {
            field: Some(ExecutionSortField::CreatedAt),
            direction: SortDirection::Desc,
        });
    }
    let direction = keys[0].direction;
    keys.push(SortKey {
        field: None,
        direction,
    });
    keys
}

/// Which slice of the ordered list a request wants; made only by `parse`, so its
/// size is within `MAX_PAGE` and its cursor has one value per sort key.
#[derive(Debug, PartialEq)]
pub struct PageRequest {
    keys: Vec<SortKey>,
    forward: bool,
    size: u64,
    after: Option<Vec<KeyValue>>,
}

impl PageRequest {
    pub fn keys(&self) -> &[SortKey] {
        &self.keys
    }

    /// Reading the ordering as given (`first`/`after`), or backwards (`last`/`before`).
    pub fn forward(&self) -> bool {
        self.forward
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    /// The values of the row the page starts after (in its reading direction), one
    /// per sort key.
    pub fn after(&self) -> Option<&[KeyValue]> {
        self.after.as_deref()
    }

    pub fn parse(
        order: &[ExecutionOrder],
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> AppResult<PageRequest> {
        let keys = ordering(order);
        let (forward, size, cursor) = match (first, last) {
            (Some(_), Some(_)) => {
                return Err(AppError::bad_input(
                    "first",
                    "give `first` or `last`, not both",
                ));
            }
            (_, Some(last)) => (
                false,
                validate::limit("last", Some(last), 0, 0, MAX_PAGE)?,
                before,
            ),
            (first, None) => (
                true,
                validate::limit("first", first, DEFAULT_PAGE, 0, MAX_PAGE)?,
                after,
            ),
        };
        let after = cursor.map(|c| decode(&c, &keys)).transpose()?;
        Ok(PageRequest {
            keys,
            forward,
            size,
            after,
        })
    }
}

/// `first` of a list inside an execution: 0 ..= `MAX_PAGE`, `default` when absent.
pub fn first(value: Option<i32>, default: i32) -> AppResult<u64> {
    validate::limit("first", value, default, 0, MAX_PAGE)
}

/// A log's cursor: its id, opaque to clients.
pub fn log_cursor(log_id: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(log_id)
}

/// The log id inside a log cursor.
pub fn log_after(cursor: &str) -> AppResult<String> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .ok_or_else(|| AppError::bad_input("after", "not a log cursor"))
}

/// The ordering `keys` name, as a cursor carries it: a cursor of another ordering
/// whose values happen to have the same types is refused, not read in the wrong
/// columns.
fn signature(keys: &[SortKey]) -> String {
    let key = |k: &SortKey| format!("{:?} {:?}", k.field, k.direction);
    keys.iter().map(key).collect::<Vec<_>>().join(",")
}

/// A row's cursor: the ordering, then the row's value of each of its keys, as
/// URL-safe base64 of a JSON array.
pub fn encode(keys: &[SortKey], values: Vec<Json>) -> String {
    let mut array = vec![Json::from(signature(keys))];
    array.extend(values);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Json::Array(array).to_string())
}

fn decode(cursor: &str, keys: &[SortKey]) -> AppResult<Vec<KeyValue>> {
    let bad = || AppError::bad_input("after", "not a cursor of this ordering");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .map_err(|_| bad())?;
    let values: Vec<Json> = serde_json::from_slice(&bytes).map_err(|_| bad())?;
    let Some((ordering, values)) = values.split_first() else {
        return Err(bad());
    };
    if ordering.as_str() != Some(&signature(keys)) || values.len() != keys.len() {
        return Err(bad());
    }
    keys.iter()
        .zip(values)
        .map(|(key, value)| match key.value_type() {
            KeyType::Int => value.as_i64().map(KeyValue::Int).ok_or_else(bad),
            KeyType::Float => value.as_f64().map(KeyValue::Float).ok_or_else(bad),
            KeyType::Text => (value.as_str())
                .map(|s| KeyValue::Text(s.to_owned()))
                .ok_or_else(bad),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn by_cost() -> Vec<ExecutionOrder> {
        vec![ExecutionOrder {
            field: ExecutionSortField::Cost,
            direction: SortDirection::Asc,
        }]
    }

    #[test]
    fn a_page_request_reads_the_way_its_arguments_say() {
        let order = by_cost();
        let cursor = encode(&ordering(&order), vec![json!(1.5), json!("e1")]);
        let parse = |first, after: Option<&str>, last, before: Option<&str>| {
            let (after, before) = (after.map(str::to_owned), before.map(str::to_owned));
            PageRequest::parse(&order, first, after, last, before)
                .map(|p| (p.forward, p.size, p.after))
                .map_err(|e| format!("{e:?}"))
        };
        let at_cursor = Some(vec![KeyValue::Float(1.5), KeyValue::Text("e1".into())]);
        let c = Some(cursor.as_str());
        assert_eq!(parse(None, None, None, None), Ok((true, 50, None)));
        assert_eq!(
            parse(Some(3), c, None, None),
            Ok((true, 3, at_cursor.clone()))
        );
        assert_eq!(parse(None, None, Some(2), c), Ok((false, 2, at_cursor)));
        let refusals = [
            (parse(Some(1), None, Some(1), None), "not both"),
            (parse(Some(MAX_PAGE + 1), None, None, None), "first"),
            (parse(None, None, Some(-1), None), "last"),
            (parse(Some(1), Some("%%"), None, None), "not a cursor"),
        ];
        for (parsed, expected) in refusals {
            let message = parsed.expect_err(expected);
            assert!(message.contains(expected), "{message}");
        }
    }

    #[test]
    fn a_cursor_of_another_ordering_is_refused() {
        let order = |field, direction| [ExecutionOrder { field, direction }];
        let by_priority = order(ExecutionSortField::Priority, SortDirection::Asc);
        let by_status = order(ExecutionSortField::Status, SortDirection::Asc);
        let newest_first = ordering(&[]);
        let of_newest_first = encode(
            &newest_first,
            vec![json!(1_700_000_000_000_i64), json!("e1")],
        );
        let cases = [
            // The values' types fit, the ordering does not.
            (&by_priority[..], of_newest_first.clone(), false),
            (&by_status[..], of_newest_first.clone(), false),
            (&[][..], of_newest_first, true),
            (&[][..], encode(&newest_first, vec![json!(1)]), false),
            (
                &[][..],
                encode(&newest_first, vec![json!("x"), json!("e1")]),
                false,
            ),
        ];
        for (order, cursor, taken) in cases {
            let parsed = PageRequest::parse(order, Some(1), Some(cursor), None, None);
            assert_eq!(parsed.is_ok(), taken, "{order:?}");
        }
    }

    #[test]
    fn ties_are_broken_by_id_in_the_first_keys_direction() {
        let keys = ordering(&by_cost());
        assert_eq!(keys.len(), 2);
        assert_eq!(
            (keys[1].field, keys[1].direction),
            (None, SortDirection::Asc)
        );
        let default = ordering(&[]);
        assert_eq!(default[0].field, Some(ExecutionSortField::CreatedAt));
        assert_eq!(default[1].direction, SortDirection::Desc);
    }
}
