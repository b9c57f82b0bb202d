//! Shared helpers for acceptance tests.

pub mod cases;
pub mod moto;
