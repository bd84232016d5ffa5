//! Row of `webhook_deliveries`: one delivery attempt of one webhook.

use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "webhook_deliveries")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub webhook_id: String,
    pub event_type: String,
    pub sequence: i64,
    pub attempt: i32,
    pub status_code: Option<i32>,
    pub ok: bool,
    #[sea_orm(column_type = "Text", nullable)]
    pub error: Option<String>,
    pub delivered_at: i64,
    pub duration_ms: i64,
}

impl ActiveModelBehavior for ActiveModel {}
