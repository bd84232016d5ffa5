//! A parsed `Filter` as one SQL condition: every operator of every field, `and` /
//! `or` / `not`, and `search` over the texts an operator looks for. Lists, counts,
//! statistics and the live feed all filter through it; `domain::query` has already
//! kept the filter within what a database takes in one statement.

use sea_orm::sea_query::{Expr, ExprTrait, Func, LikeExpr, Query};
use sea_orm::{ColumnTrait, Condition, Value};

use super::entities::{execution, execution::Column, execution_tag, step};
use super::mapping::to_ms;
use crate::domain::filter::*;
use crate::domain::query::Filter;

pub(super) fn col(column: Column) -> Expr {
    Expr::col((execution::Entity, column))
}

/// `LOWER(expr) LIKE pattern` with `%` and `_` in the needle escaped.
fn ilike(expr: Expr, needle: &str, prefix_only: bool) -> Expr {
    let escaped = needle
        .to_lowercase()
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    let pattern = if prefix_only {
        format!("{escaped}%")
    } else {
        format!("%{escaped}%")
    };
    Expr::expr(Func::lower(expr)).like(LikeExpr::new(pattern).escape('\\'))
}

/// `eq`, `ne` (a null column is unequal to everything) and `isNull`: what every
/// filter of one column has.
fn eq_ne<V: Into<Value>>(
    column: Column,
    eq: Option<V>,
    ne: Option<V>,
    is_null: Option<bool>,
) -> Condition {
    let mut c = Condition::all();
    if let Some(v) = eq {
        c = c.add(column.eq(v));
    }
    if let Some(v) = ne {
        c = c.add(Condition::any().add(column.ne(v)).add(column.is_null()));
    }
    match is_null {
        Some(true) => c.add(column.is_null()),
        Some(false) => c.add(column.is_not_null()),
        None => c,
    }
}

/// The equality operators that id and string filters share: `eq_ne`'s, `in` and
/// `notIn` (a null column is unequal to everything).
fn equality<'a>(
    column: Column,
    eq: Option<&'a str>,
    ne: Option<&'a str>,
    in_: Option<Vec<&'a str>>,
    not_in: Option<Vec<&'a str>>,
    is_null: Option<bool>,
) -> Condition {
    let mut c = eq_ne(column, eq, ne, is_null);
    if let Some(v) = in_ {
        c = c.add(column.is_in(v));
    }
    if let Some(v) = not_in {
        c = c.add(
            Condition::any()
                .add(column.is_not_in(v))
                .add(column.is_null()),
        );
    }
    c
}

fn id_filter(column: Column, f: &IdFilter) -> Condition {
    fn id(v: &async_graphql::ID) -> &str {
        v.as_str()
    }
    let (eq, ne) = (f.eq.as_ref().map(id), f.ne.as_ref().map(id));
    equality(
        column,
        eq,
        ne,
        strs(&f.in_, id),
        strs(&f.not_in, id),
        f.is_null,
    )
}

/// A list of values as the text the column holds.
fn strs<'a, T>(
    values: &'a Option<Vec<T>>,
    text: impl Fn(&'a T) -> &'a str,
) -> Option<Vec<&'a str>> {
    values
        .as_ref()
        .map(|values| values.iter().map(text).collect())
}

fn string_filter(column: Column, f: &StringFilter) -> Condition {
    let (eq, ne) = (f.eq.as_deref(), f.ne.as_deref());
    let (in_, not_in) = (
        strs(&f.in_, String::as_str),
        strs(&f.not_in, String::as_str),
    );
    let mut c = equality(column, eq, ne, in_, not_in, f.is_null);
    if let Some(v) = &f.contains {
        c = c.add(ilike(col(column), v, false));
    }
    if let Some(v) = &f.starts_with {
        c = c.add(ilike(col(column), v, true));
    }
    c
}

/// The comparison operators that integer, float and time filters share.
#[allow(clippy::too_many_arguments)]
fn ordered<V: Into<Value> + Copy>(
    column: Column,
    eq: Option<V>,
    ne: Option<V>,
    gt: Option<V>,
    gte: Option<V>,
    lt: Option<V>,
    lte: Option<V>,
    is_null: Option<bool>,
) -> Condition {
    let mut c = eq_ne(column, eq, ne, is_null);
    if let Some(v) = gt {
        c = c.add(column.gt(v));
    }
    if let Some(v) = gte {
        c = c.add(column.gte(v));
    }
    if let Some(v) = lt {
        c = c.add(column.lt(v));
    }
    if let Some(v) = lte {
        c = c.add(column.lte(v));
    }
    c
}

fn int_filter(column: Column, f: &IntFilter) -> Condition {
    ordered(column, f.eq, f.ne, f.gt, f.gte, f.lt, f.lte, f.is_null)
}

fn float_filter(column: Column, f: &FloatFilter) -> Condition {
    ordered(column, f.eq, f.ne, f.gt, f.gte, f.lt, f.lte, f.is_null)
}

fn time_filter(column: Column, f: &DateTimeFilter) -> Condition {
    let ms = |t: &Option<chrono::DateTime<chrono::Utc>>| t.map(to_ms);
    ordered(
        column,
        None,
        None,
        ms(&f.gt),
        ms(&f.gte),
        ms(&f.lt),
        ms(&f.lte),
        f.is_null,
    )
}

/// `id IN (SELECT execution_id FROM execution_tags WHERE tag IN (…))`.
fn tagged_with(tags: &[String]) -> Expr {
    col(Column::Id).in_subquery(
        Query::select()
            .column(execution_tag::Column::ExecutionId)
            .from(execution_tag::Entity)
            .and_where(Expr::col(execution_tag::Column::Tag).is_in(tags.iter().map(String::as_str)))
            .to_owned(),
    )
}

fn tags_filter(f: &TagsFilter) -> Condition {
    let mut c = Condition::all();
    for tag in f.has_all.iter().flatten() {
        c = c.add(tagged_with(std::slice::from_ref(tag)));
    }
    if let Some(any) = &f.has_any {
        c = c.add(tagged_with(any));
    }
    if let Some(none) = &f.has_none
        && !none.is_empty()
    {
        c = c.add(tagged_with(none).not());
    }
    c
}

fn search(needle: &str) -> Condition {
    let step_names = Query::select()
        .column(step::Column::ExecutionId)
        .from(step::Entity)
        .and_where(ilike(Expr::col(step::Column::Name), needle, false))
        .to_owned();
    Condition::any()
        .add(ilike(col(Column::OrderId), needle, false))
        .add(ilike(col(Column::ServiceId), needle, false))
        .add(ilike(col(Column::ResultSummary), needle, false))
        .add(ilike(col(Column::ErrorMessage), needle, false))
        .add(col(Column::Id).in_subquery(step_names))
}

/// The whole filter as one condition.
pub fn condition(filter: &Filter) -> Condition {
    clauses(filter.get())
}

fn clauses(filter: Option<&ExecutionFilter>) -> Condition {
    let Some(f) = filter else {
        return Condition::all();
    };
    let mut c = Condition::all();
    let ids = [
        (Column::Id, &f.id),
        (Column::OrderId, &f.order_id),
        (Column::ServiceId, &f.service_id),
        (Column::CustomerId, &f.customer_id),
        (Column::ProviderId, &f.provider_id),
        (Column::AssigneeId, &f.assignee_id),
        (Column::ScheduleId, &f.schedule_id),
    ];
    for (column, filter) in ids {
        if let Some(filter) = filter {
            c = c.add(id_filter(column, filter));
        }
    }
    if let Some(s) = &f.status {
        let name = |v: &crate::domain::status::ExecutionStatus| v.as_str();
        c = c.add(string_filter(
            Column::Status,
            &StringFilter {
                eq: s.eq.as_ref().map(|v| name(v).to_owned()),
                ne: s.ne.as_ref().map(|v| name(v).to_owned()),
                in_: s
                    .in_
                    .as_ref()
                    .map(|v| v.iter().map(|x| name(x).to_owned()).collect()),
                not_in: s
                    .not_in
                    .as_ref()
                    .map(|v| v.iter().map(|x| name(x).to_owned()).collect()),
                ..Default::default()
            },
        ));
    }
    if let Some(p) = &f.priority {
        let rank = |v: &crate::domain::values::Priority| i64::from(v.rank());
        let mut pc = int_filter(
            Column::Priority,
            &IntFilter {
                eq: p.eq.as_ref().map(rank),
                ne: p.ne.as_ref().map(rank),
                gte: p.gte.as_ref().map(rank),
                lte: p.lte.as_ref().map(rank),
                ..Default::default()
            },
        );
        if let Some(v) = &p.in_ {
            pc = pc.add(Column::Priority.is_in(v.iter().map(|x| x.rank())));
        }
        if let Some(v) = &p.not_in {
            pc = pc.add(Column::Priority.is_not_in(v.iter().map(|x| x.rank())));
        }
        c = c.add(pc);
    }
    if let Some(a) = &f.assignee_type {
        c = c.add(string_filter(
            Column::AssigneeType,
            &StringFilter {
                eq: a.eq.map(|v| v.as_str().to_owned()),
                in_: a
                    .in_
                    .as_ref()
                    .map(|v| v.iter().map(|x| x.as_str().to_owned()).collect()),
                not_in: a
                    .not_in
                    .as_ref()
                    .map(|v| v.iter().map(|x| x.as_str().to_owned()).collect()),
                is_null: a.is_null,
                ..Default::default()
            },
        ));
    }
    let strings = [
        (Column::AssigneeModel, &f.assignee_model),
        (Column::ErrorCode, &f.error_code),
        (Column::Environment, &f.environment),
    ];
    for (column, filter) in strings {
        if let Some(filter) = filter {
            c = c.add(string_filter(column, filter));
        }
    }
    if let Some(t) = &f.tags {
        c = c.add(tags_filter(t));
    }
    for (column, filter) in [(Column::Progress, &f.progress), (Column::Cost, &f.cost)] {
        if let Some(filter) = filter {
            c = c.add(float_filter(column, filter));
        }
    }
    let ints = [
        (Column::DurationMs, &f.duration_ms),
        (Column::TokensUsed, &f.tokens_used),
        (Column::Retries, &f.retries),
    ];
    for (column, filter) in ints {
        if let Some(filter) = filter {
            c = c.add(int_filter(column, filter));
        }
    }
    if let Some(recoverable) = f.error_recoverable {
        c = c.add(Column::ErrorRecoverable.eq(recoverable));
    }
    let times = [
        (Column::CreatedAt, &f.created_at),
        (Column::UpdatedAt, &f.updated_at),
        (Column::StartedAt, &f.started_at),
        (Column::CompletedAt, &f.completed_at),
        (Column::ScheduledAt, &f.scheduled_at),
    ];
    for (column, filter) in times {
        if let Some(filter) = filter {
            c = c.add(time_filter(column, filter));
        }
    }
    if let Some(needle) = &f.search {
        c = c.add(search(needle));
    }
    for sub in f.and.iter().flatten() {
        c = c.add(clauses(Some(sub)));
    }
    if let Some(any) = &f.or {
        let mut or = Condition::any();
        for sub in any {
            or = or.add(clauses(Some(sub)));
        }
        c = c.add(or);
    }
    if let Some(not) = &f.not {
        // The complement of what it wraps: a comparison with NULL is unknown, and
        // NOT unknown would drop the row, so unknown counts as false first.
        let wrapped = Expr::from(clauses(Some(not)));
        c = c.add(Expr::expr(Func::coalesce([wrapped, Expr::val(false)])).not());
    }
    c
}
