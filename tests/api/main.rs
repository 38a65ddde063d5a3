//! Black-box API tests: the real server over real HTTP, on SQLite and on PostgreSQL.

mod helpers;

mod concurrency;
mod crud;
mod openapi;
mod process;
mod secrets;
mod validation;
