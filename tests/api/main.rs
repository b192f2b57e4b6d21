//! The API tests: one binary, each test against its own real server over HTTP.

mod cli;
mod cluster;
mod contract;
mod crash;
mod directory;
mod expiry;
mod extended;
mod helpers;
mod hostile;
mod legacy;
mod login_race;
mod operator;
mod outage;
mod policy;
mod properties;
mod protocol;
mod revocation;
mod session_limit;
mod slapd;
mod storage;
mod systemd;
mod tls;
