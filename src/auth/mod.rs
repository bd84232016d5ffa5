//! Authentication (JWT bearer tokens) and authorisation (roles and tenants).

pub mod jwt;
pub mod principal;

pub use jwt::Keys;
pub use principal::{Permission, Principal, Role, TenantScope};
