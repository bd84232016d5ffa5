//! Row of `webhooks`: one webhook subscription of one execution.

use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "webhooks")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub execution_id: String,
    #[sea_orm(column_type = "Text")]
    pub url: String,
    #[sea_orm(column_type = "JsonBinary")]
    pub events: Json,
    #[sea_orm(column_type = "JsonBinary", nullable)]
    pub headers: Option<Json>,
    pub secret: Option<String>,
    pub retries: i32,
    pub timeout_ms: i64,
    pub created_at: i64,
}

impl ActiveModelBehavior for ActiveModel {}
