//! Loopback HTTP stand-ins for `rotor demo` and the acceptance tests.
//!
//! * [`VendorStandIn`]: one server on `127.0.0.1:<ephemeral>` that answers every vendor preset
//!   of `rotor_core::probe` under its own prefix (`{base_url}/openai`, `{base_url}/polygon`, ...),
//!   accepting only the keys it issued for that vendor, and answering bad keys the way the real
//!   vendor does.
//! * [`AppStandIn`]: an "application" whose `GET /health` reads its current key through a
//!   closure and is healthy only while the vendor accepts that key.
//!
//! Both are real HTTP servers bound to loopback, stop when the last handle is dropped (or on
//! [`VendorStandIn::shutdown`] / [`AppStandIn::shutdown`]), and never log or echo a key.

mod app;
mod server;
mod vendor;

pub use app::{
    current_key_from, task_key_from, AppStandIn, BoxFuture, CurrentKey, KeyChecker, ServingVersion,
};
pub use vendor::{VendorStandIn, VENDORS};
