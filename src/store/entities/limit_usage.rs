//! Row of `limit_usage`: what one limited key holds (slots of running steps, the
//! rate's next arrival time).

use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "limit_usage")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub key: String,
    pub running: i64,
    pub executions: i64,
    pub tat: Option<i64>,
    pub spent_cost: f64,
    pub spent_tokens: i64,
    pub period_start: Option<i64>,
}

impl ActiveModelBehavior for ActiveModel {}
