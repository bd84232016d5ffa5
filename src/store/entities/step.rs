//! Row of `execution_steps`: one step of one execution.

use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "execution_steps")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub execution_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub step_id: String,
    pub idx: i32,
    pub name: String,
    pub status: String,
    #[sea_orm(column_type = "JsonBinary")]
    pub depends_on: Json,
    pub handler_kind: String,
    #[sea_orm(column_type = "JsonBinary", nullable)]
    pub handler_config: Option<Json>,
    #[sea_orm(column_type = "JsonBinary", nullable)]
    pub assignee: Option<Json>,
    #[sea_orm(column_type = "JsonBinary", nullable)]
    pub input: Option<Json>,
    #[sea_orm(column_type = "JsonBinary", nullable)]
    pub output: Option<Json>,
    #[sea_orm(column_type = "JsonBinary", nullable)]
    pub error: Option<Json>,
    pub started_at: Option<i64>,
    pub completed_at: Option<i64>,
    pub duration_ms: Option<i64>,
    pub timeout_ms: Option<i64>,
    pub retries: i32,
    pub attempt: i32,
    pub ready_at: Option<i64>,
    pub lease_expires_at: Option<i64>,
    pub lease_owner: Option<String>,
    #[sea_orm(column_type = "JsonBinary", nullable)]
    pub metadata: Option<Json>,
    pub concurrency_key: Option<String>,
    #[sea_orm(column_type = "JsonBinary", nullable)]
    pub holds: Option<Json>,
    pub waiting_on: Option<String>,
    pub waiting_until: Option<i64>,
}

impl ActiveModelBehavior for ActiveModel {}
