//! Row of `execution_logs`: one log line.

use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "execution_logs")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub execution_id: String,
    pub timestamp: i64,
    pub level: String,
    #[sea_orm(column_type = "Text")]
    pub message: String,
    pub step_id: Option<String>,
    #[sea_orm(column_type = "JsonBinary", nullable)]
    pub context: Option<Json>,
    #[sea_orm(column_type = "JsonBinary", nullable)]
    pub metadata: Option<Json>,
}

impl ActiveModelBehavior for ActiveModel {}
