//! Row of `execution_events`: one persisted event; (execution_id, sequence) is unique and gapless.

use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "execution_events")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub execution_id: String,
    pub sequence: i64,
    pub event_type: String,
    pub timestamp: i64,
    pub status: String,
    pub progress: f64,
    #[sea_orm(column_type = "JsonBinary")]
    pub payload: Json,
    pub actor: Option<String>,
    #[sea_orm(column_type = "Text", nullable)]
    pub reason: Option<String>,
}

impl ActiveModelBehavior for ActiveModel {}
