//! The API tests: one binary, each test against its own real server over HTTP.

mod activity_store;
mod activity_upgrade;
mod cli;
mod cluster;
mod contract;
mod crash;
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
mod storage;
mod systemd;
mod tls;
