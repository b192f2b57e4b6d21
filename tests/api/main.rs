//! The API tests: one binary, each test against its own real server over HTTP.

mod cli;
mod cluster;
mod contract;
mod expiry;
mod extended;
mod helpers;
mod hostile;
mod legacy;
mod login_race;
mod outage;
mod protocol;
mod session_limit;
mod systemd;
mod tls;
