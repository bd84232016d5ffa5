//! Row of `execution_tags`: one tag of one execution, for tag filters.

use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "execution_tags")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub execution_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub tag: String,
}

impl ActiveModelBehavior for ActiveModel {}
