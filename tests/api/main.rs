//! The API tests: one binary, each test against its own real server over HTTP.

mod attacks;
mod cli;
mod cluster;
mod contract;
mod crash;
mod expiry;
mod extended;
mod helpers;
mod hostile;
mod legacy;
mod listed_ids;
mod login_race;
mod logs;
mod operator;
mod outage;
mod policy;
mod properties;
mod protocol;
mod revocation;
mod session_limit;
mod slow_clients;
mod storage;
mod systemd;
mod tls;
