//! Shared helpers for acceptance tests.

pub mod cases;
pub mod contract;
pub mod moto;
pub mod terraform;
