//! sessiond: a session service for legacy SOAP clients.
//!
//! The binary in `main.rs` is a thin shell over these modules, so the tests drive the same code.

pub mod config;
pub mod console;
pub mod domain;
pub mod http;
pub mod service;
pub mod soap;
pub mod startup;
pub mod store;
pub mod telemetry;
pub mod tls;
