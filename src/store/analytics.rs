//! Analytics over execution history, computed in SQL over the executions the caller
//! may see that match the filter (only the measures a query selected). The same
//! statements run on SQLite and Postgres: times are integers, so buckets are integer
//! arithmetic (months use each backend's calendar function), and percentiles are
//! Postgres' `percentile_cont`, spelled out on SQLite over `ROW_NUMBER()` ranks, so
//! both backends give the same answers.

use sea_orm::sea_query::Query;
use sea_orm::{ConnectionTrait, DbBackend, QueryResult, Statement};

use super::Store;
use super::entities::execution;
use super::mapping::from_ms;
use super::{filters, scope};
use crate::auth::Principal;
use crate::domain::analytics::*;
use crate::domain::query::Filter;
use crate::domain::status::ExecutionStatus;
use crate::domain::values::Priority;
use crate::error::{AppError, AppResult};

/// Percentiles reported, in percent.
const PERCENTILES: [i64; 4] = [50, 90, 95, 99];

impl Store {
    /// `<scope> AND <filter>` over the `executions` table, as SQL and values, for the
    /// WHERE clause of an analytics query (inline, so that the planner can use the
    /// indexes on the filtered columns).
    fn visible(&self, principal: &Principal, filter: &Filter) -> Statement {
        let select = Query::select()
            .column((execution::Entity, execution::Column::Id))
            .from(execution::Entity)
            .cond_where(scope::condition(&principal.scope()))
            .cond_where(filters::condition(filter))
            .to_owned();
        let mut statement = self.db.get_database_backend().build(&select);
        statement.sql = match statement.sql.split_once(" WHERE ") {
            Some((_, condition)) => format!("({condition})"),
            None => "1 = 1".to_owned(),
        };
        statement
    }

    async fn query(&self, visible: Statement, sql: String) -> AppResult<Vec<QueryResult>> {
        let values = visible.values.map(|v| v.0).unwrap_or_default();
        let statement = Statement::from_sql_and_values(self.db.get_database_backend(), sql, values);
        Ok(self.db.query_all_raw(statement).await?)
    }

    pub async fn execution_stats(
        &self,
        principal: &Principal,
        filter: &Filter,
        group_by: &[StatsDimension],
        bucket: Option<TimeBucket>,
        measures: Measures,
        limit: u64,
    ) -> AppResult<Vec<ExecutionStats>> {
        let visible = self.visible(principal, filter);
        let backend = self.db.get_database_backend();
        let mut keys: Vec<String> = group_by
            .iter()
            .enumerate()
            .map(|(i, d)| format!("{} AS k{i}", dimension_sql(*d)))
            .collect();
        if let Some(bucket) = bucket {
            keys.push(format!("{} AS b", bucket_sql(bucket, backend)));
        }
        let names: Vec<String> = (0..group_by.len())
            .map(|i| format!("k{i}"))
            .chain(bucket.map(|_| "b".to_owned()))
            .collect();
        let tag_join = if group_by.contains(&StatsDimension::Tag) {
            "LEFT JOIN execution_tags t ON t.execution_id = executions.id"
        } else {
            ""
        };
        let by_status = ExecutionStatus::ALL.map(|s| {
            let always = matches!(
                s,
                ExecutionStatus::Completed | ExecutionStatus::Failed | ExecutionStatus::Cancelled
            );
            let count = format!("COUNT(*) FILTER (WHERE status = '{}')", s.as_str());
            wanted(measures.by_status || always, &[&count])
        });
        let (ranked, source) = ranking(backend, measures.percentiles, &names);
        let sql = format!(
            "WITH base AS (SELECT {keys}executions.status AS status, executions.duration_ms AS d, executions.cost AS cost, \
               executions.tokens_used AS tok, executions.api_calls AS api, executions.retries AS retries \
               FROM executions {tag_join} WHERE {visible}){ranked} \
             SELECT {names_select}COUNT(*), {by_status}, {cost}, {tokens}, {api_calls}, {retries}, \
               {durations}, {percentiles} \
             FROM {source} {group} ORDER BY {order}COUNT(*) DESC{tie} LIMIT {limit}",
            keys = keys.iter().map(|k| format!("{k}, ")).collect::<String>(),
            visible = visible.sql,
            names_select = names.iter().map(|n| format!("{n}, ")).collect::<String>(),
            by_status = by_status.join(", "),
            cost = wanted(
                measures.cost,
                &[
                    "CAST(SUM(cost) AS DOUBLE PRECISION)",
                    "CAST(AVG(cost) AS DOUBLE PRECISION)"
                ]
            ),
            tokens = wanted(measures.tokens, &["CAST(SUM(tok) AS BIGINT)"]),
            api_calls = wanted(measures.api_calls, &["CAST(SUM(api) AS BIGINT)"]),
            retries = wanted(measures.retries, &["CAST(SUM(retries) AS BIGINT)"]),
            durations = wanted(
                measures.durations,
                &["CAST(AVG(d) AS DOUBLE PRECISION)", "MIN(d)", "MAX(d)"]
            ),
            percentiles = PERCENTILES
                .map(|p| wanted(measures.percentiles, &[&percentile_sql(backend, p)]))
                .join(", "),
            group = if names.is_empty() {
                String::new()
            } else {
                format!("GROUP BY {}", names.join(", "))
            },
            order = if bucket.is_some() { "b ASC, " } else { "" },
            tie = (0..group_by.len())
                .map(|i| format!(", k{i}"))
                .collect::<String>(),
            limit = limit.min(MAX_GROUPS as u64),
        );
        let rows = self.query(visible, sql).await?;
        rows.iter()
            .map(|row| stats_from_row(row, group_by, bucket.is_some()))
            .collect()
    }

    pub async fn error_distribution(
        &self,
        principal: &Principal,
        filter: &Filter,
        limit: u64,
    ) -> AppResult<Vec<ErrorCount>> {
        let visible = self.visible(principal, filter);
        let sql = format!(
            "SELECT executions.error_code, COUNT(*), \
               CAST(SUM(CASE WHEN executions.error_recoverable THEN 1 ELSE 0 END) AS BIGINT), \
               MAX(COALESCE(executions.completed_at, executions.updated_at)), MAX(executions.error_message) \
             FROM executions WHERE executions.error_code IS NOT NULL AND {} \
             GROUP BY executions.error_code ORDER BY COUNT(*) DESC, executions.error_code LIMIT {}",
            visible.sql,
            limit.min(MAX_GROUPS as u64)
        );
        let rows = self.query(visible, sql).await?;
        rows.iter()
            .map(|row| {
                Ok(ErrorCount {
                    code: get(row, 0)?,
                    count: get(row, 1)?,
                    recoverable: get(row, 2)?,
                    last_seen_at: from_ms(get(row, 3)?),
                    sample_message: get::<Option<String>>(row, 4)?.unwrap_or_default(),
                })
            })
            .collect()
    }

    pub async fn step_stats(
        &self,
        principal: &Principal,
        filter: &Filter,
        limit: u64,
    ) -> AppResult<Vec<StepStats>> {
        let visible = self.visible(principal, filter);
        let backend = self.db.get_database_backend();
        let (ranked, source) = ranking(backend, true, &["name".to_owned()]);
        let sql = format!(
            "WITH base AS (SELECT s.name AS name, s.status AS status, s.duration_ms AS d \
               FROM execution_steps s JOIN executions ON executions.id = s.execution_id \
               WHERE {visible}){ranked} \
             SELECT name, COUNT(*), COUNT(*) FILTER (WHERE status = 'FAILED'), \
               CAST(AVG(d) AS DOUBLE PRECISION), {p95} \
             FROM {source} GROUP BY name ORDER BY COUNT(*) DESC, name LIMIT {limit}",
            visible = visible.sql,
            p95 = percentile_sql(backend, 95),
            limit = limit.min(MAX_GROUPS as u64),
        );
        let rows = self.query(visible, sql).await?;
        rows.iter()
            .map(|row| {
                Ok(StepStats {
                    step_name: get(row, 0)?,
                    total: get(row, 1)?,
                    failed: get(row, 2)?,
                    avg_duration_ms: get(row, 3)?,
                    p95_duration_ms: get(row, 4)?,
                })
            })
            .collect()
    }
}

fn dimension_sql(dimension: StatsDimension) -> &'static str {
    match dimension {
        StatsDimension::Status => "executions.status",
        StatsDimension::Service => "executions.service_id",
        StatsDimension::Priority => "CAST(executions.priority AS TEXT)",
        StatsDimension::AssigneeType => "executions.assignee_type",
        StatsDimension::AssigneeId => "executions.assignee_id",
        StatsDimension::AssigneeModel => "executions.assignee_model",
        StatsDimension::ErrorCode => "executions.error_code",
        StatsDimension::Tag => "t.tag",
        StatsDimension::Environment => "executions.environment",
        StatsDimension::Customer => "executions.customer_id",
    }
}

/// The bucket's start, in epoch ms, of an execution's creation time (UTC). The day's
/// expression is also an index's (migration m0005): keep the two the same.
fn bucket_sql(bucket: TimeBucket, backend: DbBackend) -> String {
    const DAY: i64 = 86_400_000;
    match bucket {
        TimeBucket::Minute => "(executions.created_at / 60000) * 60000".into(),
        TimeBucket::Hour => "(executions.created_at / 3600000) * 3600000".into(),
        TimeBucket::Day => format!("(executions.created_at / {DAY}) * {DAY}"),
        // Weeks start on Monday; 1970-01-01 was a Thursday.
        TimeBucket::Week => {
            format!("((executions.created_at / {DAY}) - ((executions.created_at / {DAY}) + 3) % 7) * {DAY}")
        }
        TimeBucket::Month => match backend {
            DbBackend::Postgres => "CAST(EXTRACT(EPOCH FROM date_trunc('month', \
                 to_timestamp(executions.created_at / 1000.0) AT TIME ZONE 'UTC')) AS BIGINT) * 1000"
                .into(),
            _ => "CAST(strftime('%s', executions.created_at / 1000, 'unixepoch', 'start of month') \
                  AS INTEGER) * 1000"
                .into(),
        },
    }
}

/// Aggregates' SQL when they were asked for, else a NULL in place of each, so that
/// the row's layout stays the same.
fn wanted(on: bool, columns: &[&str]) -> String {
    columns
        .iter()
        .map(|column| if on { column } else { "NULL" })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The step after `base` that percentiles need, and what the aggregates read: on
/// SQLite, when percentiles are computed, `ranked`; else none, and `base` (Postgres
/// has `percentile_cont`).
fn ranking(backend: DbBackend, percentiles: bool, partition: &[String]) -> (String, &'static str) {
    if backend == DbBackend::Sqlite && percentiles {
        (ranked_sql(partition), "ranked")
    } else {
        (String::new(), "base")
    }
}

/// On SQLite, a `ranked` step after `base`: each group's non-null durations ranked
/// ascending from 1 (`rn`; nulls sort first and rank 0 or below) and counted (`nd`),
/// all over the one window `w`, so the rows are sorted once, or not at all when an
/// index (m0005) yields them in group and duration order.
fn ranked_sql(partition: &[String]) -> String {
    let over = if partition.is_empty() {
        String::new()
    } else {
        format!("PARTITION BY {}", partition.join(", "))
    };
    format!(
        ", ranked AS (SELECT base.*, ROW_NUMBER() OVER w - COUNT(*) OVER g + COUNT(d) OVER g AS rn, \
           COUNT(d) OVER g AS nd FROM base \
           WINDOW w AS ({over} ORDER BY d), g AS (w ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING))"
    )
}

/// Percentile `percent` of the durations `d` of a group, as a double. Postgres has
/// `percentile_cont`; on SQLite the same definition is spelled out: the value at
/// 0-based rank ⌊(n−1)·p⌋, plus the fraction of the way to the next one.
fn percentile_sql(backend: DbBackend, percent: i64) -> String {
    if backend == DbBackend::Postgres {
        return format!("percentile_cont({percent} / 100.0) WITHIN GROUP (ORDER BY d)");
    }
    let at = |offset: i64| {
        format!("MAX(CASE WHEN rn = (nd - 1) * {percent} / 100 + {offset} THEN d END)")
    };
    let (lower, upper) = (at(1), at(2));
    format!(
        "CAST({lower} AS DOUBLE PRECISION) + (COALESCE({upper}, {lower}) - {lower}) \
           * ((MAX(nd) - 1) * {percent} % 100) / 100.0"
    )
}

fn get<T: sea_orm::TryGetable>(row: &QueryResult, index: usize) -> AppResult<T> {
    row.try_get_by_index(index)
        .map_err(|e| AppError::Internal(format!("analytics column {index}: {e}")))
}

fn stats_from_row(
    row: &QueryResult,
    group_by: &[StatsDimension],
    bucketed: bool,
) -> AppResult<ExecutionStats> {
    let mut i = 0;
    let mut next = || {
        i += 1;
        i - 1
    };
    let mut keys = Vec::with_capacity(group_by.len());
    for dimension in group_by {
        let value: Option<String> = get(row, next())?;
        let value = match dimension {
            StatsDimension::Priority => value
                .and_then(|v| v.parse::<i16>().ok())
                .map(|rank| Priority::from_rank(rank).as_str().to_owned()),
            _ => value,
        };
        keys.push(StatsKey {
            dimension: *dimension,
            value,
        });
    }
    let bucket_start = if bucketed {
        get::<Option<i64>>(row, next())?.map(from_ms)
    } else {
        None
    };
    let total: i64 = get(row, next())?;
    let mut by_status = Vec::new();
    for status in ExecutionStatus::ALL {
        let count: Option<i64> = get(row, next())?;
        by_status.push(StatusCount {
            status,
            count: count.unwrap_or(0),
        });
    }
    let count_of = |s: ExecutionStatus| {
        by_status
            .iter()
            .find(|c| c.status == s)
            .map_or(0, |c| c.count)
    };
    let (completed, failed, cancelled) = (
        count_of(ExecutionStatus::Completed),
        count_of(ExecutionStatus::Failed),
        count_of(ExecutionStatus::Cancelled),
    );
    // Sums are null over no values, and when not asked for.
    let total_cost = get::<Option<f64>>(row, next())?.unwrap_or_default();
    let avg_cost: Option<f64> = get(row, next())?;
    let mut sum = || get::<Option<i64>>(row, next()).map(|s| saturated_int(s.unwrap_or_default()));
    let (total_tokens, total_api_calls, total_retries) = (sum()?, sum()?, sum()?);
    let avg_ms: Option<f64> = get(row, next())?;
    let min_ms: Option<i64> = get(row, next())?;
    let max_ms: Option<i64> = get(row, next())?;
    let mut percentiles = Vec::new();
    for _ in PERCENTILES {
        percentiles.push(get::<Option<f64>>(row, next())?);
    }
    Ok(ExecutionStats {
        keys,
        bucket_start,
        total,
        completed,
        failed,
        cancelled,
        active: total - completed - failed - cancelled,
        success_rate: success_rate(completed, failed, cancelled),
        by_status: by_status.into_iter().filter(|c| c.count > 0).collect(),
        duration: DurationStats {
            avg_ms,
            p50_ms: percentiles[0],
            p90_ms: percentiles[1],
            p95_ms: percentiles[2],
            p99_ms: percentiles[3],
            min_ms,
            max_ms,
        },
        total_cost,
        avg_cost,
        total_tokens,
        total_api_calls,
        total_retries,
    })
}
