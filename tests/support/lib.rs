//! Shared helpers for acceptance tests.

pub mod moto;
pub mod cases;
