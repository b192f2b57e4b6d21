//! The API tests: one binary, each test against its own real server over HTTP.

mod cli;
mod cluster;
mod contract;
mod crash;
mod disk;
mod expiry;
mod extended;
mod failover;
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
mod silent_link;
mod storage;
mod systemd;
mod tls;
mod upgrade;
