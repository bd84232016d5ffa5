//! A filter as clients send it, parsed into a `Filter` that is proven within the
//! bounds a database takes in one statement (nesting depth, branches, values,
//! finite numbers). Adapters parse once at the edge; lists, counts, statistics and
//! the live feed then take a `Filter` and cannot fail on it.

use super::filter::*;
use crate::error::{AppError, AppResult};

/// The texts `search` looks in (order id, service id, result summary, error
/// message, step names): each is one value of the statement.
const SEARCHED_TEXTS: usize = 5;

/// A filter within bounds; the default matches everything.
#[derive(Clone, Debug, Default)]
pub struct Filter(Option<ExecutionFilter>);

impl Filter {
    /// Refuses a filter nested deeper than `MAX_FILTER_DEPTH`, with an `and`, `or` or
    /// `tags.hasAll` longer than `MAX_FILTER_BRANCHES`, naming more than
    /// `MAX_FILTER_VALUES` values in all, or comparing with a number that is not finite.
    pub fn parse(filter: Option<ExecutionFilter>) -> AppResult<Filter> {
        if let Some(filter) = &filter {
            let values = values(filter, 0)?;
            if values > MAX_FILTER_VALUES {
                return Err(AppError::bad_input(
                    "filter",
                    format!("{values} values; at most {MAX_FILTER_VALUES}"),
                ));
            }
        }
        Ok(Filter(filter))
    }

    /// What the client sent, or `None` for a filter that matches everything.
    pub fn get(&self) -> Option<&ExecutionFilter> {
        self.0.as_ref()
    }
}

fn one<T>(value: &Option<T>) -> usize {
    usize::from(value.is_some())
}

fn each<T>(values: &Option<Vec<T>>) -> usize {
    values.as_ref().map_or(0, Vec::len)
}

fn finite(values: &[Option<f64>]) -> AppResult<usize> {
    if values.iter().flatten().any(|v| !v.is_finite()) {
        return Err(AppError::bad_input("filter", "numbers must be finite"));
    }
    Ok(values.iter().flatten().count())
}

fn ids(f: &IdFilter) -> usize {
    one(&f.eq) + one(&f.ne) + each(&f.in_) + each(&f.not_in)
}

fn strings(f: &StringFilter) -> usize {
    let (eq, ne, contains, starts) = (&f.eq, &f.ne, &f.contains, &f.starts_with);
    one(eq) + one(ne) + each(&f.in_) + each(&f.not_in) + one(contains) + one(starts)
}

fn ints(f: &IntFilter) -> usize {
    [f.eq, f.ne, f.gt, f.gte, f.lt, f.lte].iter().map(one).sum()
}

fn times(f: &DateTimeFilter) -> usize {
    one(&f.gt) + one(&f.gte) + one(&f.lt) + one(&f.lte)
}

/// The values `f` names, its branches included, once every bound but the total is
/// checked (`depth` is how deep `f` sits in `and`/`or`/`not`).
fn values(f: &ExecutionFilter, depth: usize) -> AppResult<usize> {
    if depth > MAX_FILTER_DEPTH {
        return Err(AppError::bad_input(
            "filter",
            format!("and/or/not nest at most {MAX_FILTER_DEPTH} deep"),
        ));
    }
    for (field, branches) in [("filter.and", &f.and), ("filter.or", &f.or)] {
        if each(branches) > MAX_FILTER_BRANCHES {
            return Err(AppError::bad_input(
                field,
                format!("at most {MAX_FILTER_BRANCHES} branches"),
            ));
        }
    }
    let tags = f.tags.as_ref();
    if tags.is_some_and(|t| each(&t.has_all) > MAX_FILTER_BRANCHES) {
        return Err(AppError::bad_input(
            "filter.tags.hasAll",
            format!("at most {MAX_FILTER_BRANCHES} tags"),
        ));
    }
    let mut count = [
        &f.id,
        &f.order_id,
        &f.service_id,
        &f.customer_id,
        &f.provider_id,
        &f.assignee_id,
        &f.schedule_id,
    ]
    .into_iter()
    .flatten()
    .map(ids)
    .sum::<usize>();
    count += [&f.assignee_model, &f.error_code, &f.environment]
        .into_iter()
        .flatten()
        .map(strings)
        .sum::<usize>();
    count += [&f.duration_ms, &f.tokens_used, &f.retries]
        .into_iter()
        .flatten()
        .map(ints)
        .sum::<usize>();
    let moments = [&f.created_at, &f.updated_at, &f.started_at, &f.completed_at];
    count += (moments.into_iter().chain([&f.scheduled_at]))
        .flatten()
        .map(times)
        .sum::<usize>();
    for f in [&f.progress, &f.cost].into_iter().flatten() {
        count += finite(&[f.eq, f.ne, f.gt, f.gte, f.lt, f.lte])?;
    }
    if let Some(s) = &f.status {
        count += one(&s.eq) + one(&s.ne) + each(&s.in_) + each(&s.not_in);
    }
    if let Some(p) = &f.priority {
        count += one(&p.eq) + one(&p.ne) + each(&p.in_) + each(&p.not_in);
        count += one(&p.gte) + one(&p.lte);
    }
    if let Some(a) = &f.assignee_type {
        count += one(&a.eq) + each(&a.in_) + each(&a.not_in);
    }
    if let Some(t) = tags {
        count += each(&t.has_all) + each(&t.has_any) + each(&t.has_none);
    }
    // A `not` binds one value of its own (its unknowns count as false).
    count += one(&f.error_recoverable) + one(&f.search) * SEARCHED_TEXTS + one(&f.not);
    let branches = f.and.iter().chain(&f.or).flatten();
    for branch in branches.chain(f.not.as_deref()) {
        count += values(branch, depth + 1)?;
    }
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(n: usize) -> ExecutionFilter {
        let in_ = (0..n).map(|i| i.to_string().into()).collect();
        ExecutionFilter {
            order_id: Some(IdFilter {
                in_: Some(in_),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn nested(depth: usize) -> ExecutionFilter {
        (0..depth).fold(ids(1), |inner, _| ExecutionFilter {
            not: Some(Box::new(inner)),
            ..Default::default()
        })
    }

    fn refusal(filter: ExecutionFilter) -> Option<String> {
        Filter::parse(Some(filter)).err().map(|e| format!("{e:?}"))
    }

    #[test]
    fn a_filter_is_refused_beyond_each_bound_and_taken_at_it() {
        let branches = |n: usize| ExecutionFilter {
            or: Some(vec![ids(1); n]),
            ..Default::default()
        };
        let cost = |value: f64| ExecutionFilter {
            cost: Some(FloatFilter {
                gt: Some(value),
                ..Default::default()
            }),
            ..Default::default()
        };
        let cases: Vec<(&str, ExecutionFilter, Option<&str>)> = vec![
            ("values at the bound", ids(MAX_FILTER_VALUES), None),
            (
                "one value more",
                ids(MAX_FILTER_VALUES + 1),
                Some("1001 values"),
            ),
            ("nesting at the bound", nested(MAX_FILTER_DEPTH), None),
            (
                "one level deeper",
                nested(MAX_FILTER_DEPTH + 1),
                Some("nest at most"),
            ),
            ("branches at the bound", branches(MAX_FILTER_BRANCHES), None),
            (
                "one branch more",
                branches(MAX_FILTER_BRANCHES + 1),
                Some("branches"),
            ),
            ("a finite number", cost(1.5), None),
            ("infinity", cost(f64::INFINITY), Some("finite")),
            ("not a number", cost(f64::NAN), Some("finite")),
        ];
        for (case, filter, refused) in cases {
            match (refusal(filter), refused) {
                (None, None) => {}
                (Some(message), Some(expected)) => {
                    assert!(message.contains(expected), "{case}: {message}")
                }
                (got, _) => panic!("{case}: {got:?}, expected {refused:?}"),
            }
        }
    }

    #[test]
    fn values_in_every_branch_count_towards_the_total() {
        let half = MAX_FILTER_VALUES / 2;
        let filter = ExecutionFilter {
            and: Some(vec![ids(half), ids(half)]),
            not: Some(Box::new(ids(1))),
            ..Default::default()
        };
        let message = refusal(filter).expect("refused");
        // 500 + 500 + 1, and the `not`'s own value.
        assert!(message.contains("1002 values"), "{message}");
    }
}
