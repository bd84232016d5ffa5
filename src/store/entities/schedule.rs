//! Row of `schedules`: a cron schedule of executions and its firing state.

use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "schedules")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub customer_id: Option<String>,
    pub name: Option<String>,
    pub cron: String,
    pub timezone: String,
    #[sea_orm(column_type = "JsonBinary")]
    pub template: Json,
    pub overlap: String,
    pub catch_up_window_ms: i64,
    pub paused: bool,
    pub next_fire_at: Option<i64>,
    pub pending_fire: Option<i64>,
    pub buffered_fire: Option<i64>,
    pub last_fire_at: Option<i64>,
    pub last_execution_id: Option<String>,
    pub fires: i64,
    pub skipped: i64,
    pub version: i64,
    pub created_by: String,
    pub created_at: i64,
    pub updated_at: i64,
}

impl ActiveModelBehavior for ActiveModel {}
