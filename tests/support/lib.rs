//! Shared helpers for acceptance tests.

pub mod candidates;
pub mod cases;
pub mod contract;
pub mod faults;
pub mod moto;
pub mod principals;
pub mod terraform;
