//! Row of `executions`: one execution, with the columns filters and analytics use.

use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "executions")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub order_id: String,
    pub service_id: String,
    pub customer_id: Option<String>,
    pub provider_id: Option<String>,
    pub status: String,
    pub priority: i16,
    pub progress: f64,
    pub progress_explicit: bool,
    #[sea_orm(column_type = "JsonBinary", nullable)]
    pub assignee: Option<Json>,
    pub assignee_type: Option<String>,
    pub assignee_id: Option<String>,
    pub assignee_model: Option<String>,
    #[sea_orm(column_type = "JsonBinary", nullable)]
    pub result: Option<Json>,
    #[sea_orm(column_type = "Text", nullable)]
    pub result_summary: Option<String>,
    #[sea_orm(column_type = "JsonBinary", nullable)]
    pub error: Option<Json>,
    pub error_code: Option<String>,
    #[sea_orm(column_type = "Text", nullable)]
    pub error_message: Option<String>,
    pub error_recoverable: Option<bool>,
    #[sea_orm(column_type = "JsonBinary")]
    pub metrics: Json,
    pub started_at: Option<i64>,
    pub completed_at: Option<i64>,
    pub duration_ms: Option<i64>,
    pub tokens_used: Option<i64>,
    pub cost: Option<f64>,
    pub api_calls: Option<i64>,
    pub retries: i32,
    pub timeout_ms: i64,
    #[sea_orm(column_type = "JsonBinary", nullable)]
    pub retry_policy: Option<Json>,
    #[sea_orm(column_type = "JsonBinary")]
    pub tags: Json,
    pub environment: Option<String>,
    pub version: Option<String>,
    #[sea_orm(column_type = "JsonBinary", nullable)]
    pub metadata: Option<Json>,
    pub last_sequence: i64,
    pub paused_at: Option<i64>,
    pub paused_ms: i64,
    pub retry_at: Option<i64>,
    pub scheduled_at: Option<i64>,
    pub schedule_id: Option<String>,
    #[sea_orm(column_type = "JsonBinary", nullable)]
    pub webhook_events: Option<Json>,
    pub created_at: i64,
    pub updated_at: i64,
    pub concurrency_key: Option<String>,
    #[sea_orm(column_type = "JsonBinary", nullable)]
    pub holds: Option<Json>,
    pub waiting_on: Option<String>,
    #[sea_orm(column_type = "JsonBinary", nullable)]
    pub budget: Option<Json>,
}

impl ActiveModelBehavior for ActiveModel {}
