//! rotor-asl: an Amazon States Language (JSONPath query language) validator and executor.
//!
//! It knows nothing about rotation. It runs a definition the way AWS Step Functions does:
//! input/output processing in AWS's order, intrinsic functions, Choice rules, Retry/Catch with
//! AWS's error-matching rules, Map and Parallel, a virtual clock, and a history shaped like
//! `GetExecutionHistory`.

pub mod choice;
pub mod error;
pub mod intrinsic;
pub mod path;

pub use error::StatesError;
pub mod definition;
pub mod executor;
pub mod history;
pub mod mock;
pub mod redrive;
pub mod task;
pub mod template;
pub mod validate;
