//! The API tests: one binary, each test against its own real server over HTTP.

mod cli;
mod cluster;
mod contract;
mod expiry;
mod extended;
mod helpers;
mod hostile;
mod legacy;
mod outage;
mod protocol;
