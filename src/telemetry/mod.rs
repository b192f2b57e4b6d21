//! Logs and metrics: the log format (text or one JSON object a line) and every Prometheus
//! metric the service exports, declared once in [`Metrics`].
//!
//! Metrics use the `prometheus` crate rather than `metrics` + `metrics-exporter-prometheus`:
//! its counters and histograms are plain atomics we can hold as values, so the hot path
//! (validateSession) adds to an already-resolved child with no registry, key hashing or lock
//! in between; a registry per [`Metrics`] lets every test server in one process count on its
//! own; and its histograms have fixed buckets, where the exporter keeps raw samples until a
//! scrape drains them (memory that grows when nobody scrapes). crates.io uses it the same way.
//!
//! Security events are ordinary `log` records with key-value fields (`event`, `user`,
//! `client_type`, `host`, `reason`, `actor`, `session`) under the target [`SECURITY`]; the
//! text format appends them as `key=value`, the JSON format makes each one a field beside
//! `ts`, `level`, `target` and `msg`. Those names are stable: log shippers parse them.

use std::time::Duration;

mod logs;

pub use logs::{init_logging, os_user, LogFormat, SECURITY};

use prometheus::core::Collector;
use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts,
    Registry, TextEncoder,
};

/// Latency buckets, in seconds: validateSession answers in well under a millisecond, logins
/// take an Argon2 check (tens of milliseconds), a long listing seconds.
const LATENCY_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];
/// Activity flush buckets, in seconds: one transaction of up to many thousand rows.
const FLUSH_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

/// How a metric type is made from its name, help text, labels and (for histograms) buckets.
trait Declare: Collector + Clone + Sized + 'static {
    fn declare(name: &str, help: &str, labels: &[&str], buckets: &[f64]) -> Self;
}

impl Declare for IntCounter {
    fn declare(name: &str, help: &str, _: &[&str], _: &[f64]) -> Self {
        IntCounter::with_opts(Opts::new(name, help)).expect("a valid metric")
    }
}

impl Declare for IntCounterVec {
    fn declare(name: &str, help: &str, labels: &[&str], _: &[f64]) -> Self {
        IntCounterVec::new(Opts::new(name, help), labels).expect("a valid metric")
    }
}

impl Declare for IntGauge {
    fn declare(name: &str, help: &str, _: &[&str], _: &[f64]) -> Self {
        IntGauge::with_opts(Opts::new(name, help)).expect("a valid metric")
    }
}

impl Declare for Histogram {
    fn declare(name: &str, help: &str, _: &[&str], buckets: &[f64]) -> Self {
        let opts = HistogramOpts::new(name, help).buckets(buckets.to_vec());
        Histogram::with_opts(opts).expect("a valid metric")
    }
}

impl Declare for HistogramVec {
    fn declare(name: &str, help: &str, labels: &[&str], buckets: &[f64]) -> Self {
        let opts = HistogramOpts::new(name, help).buckets(buckets.to_vec());
        HistogramVec::new(opts, labels).expect("a valid metric")
    }
}

/// Declares the metrics struct: each field is one metric named `sessiond_<field>`, its doc
/// comment the HELP text, its labels in brackets, its buckets after `buckets`.
macro_rules! metrics {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $(
                #[doc = $help:literal]
                pub $field:ident: $ty:ty $([$($label:literal),+])? $(, buckets $buckets:expr)?;
            )*
        }
    ) => {
        $(#[$meta])*
        pub struct $name {
            registry: Registry,
            $( #[doc = $help] pub $field: $ty, )*
        }

        impl $name {
            fn declare() -> Self {
                let registry = Registry::new();
                $(
                    let $field = <$ty as Declare>::declare(
                        concat!("sessiond_", stringify!($field)),
                        $help.trim(),
                        &[$($($label),+)?],
                        { let _b: &[f64] = &[]; $(let _b = $buckets;)? _b },
                    );
                    registry
                        .register(Box::new($field.clone()))
                        .expect("metric names are unique");
                )*
                Self { registry, $($field),* }
            }
        }
    };
}

metrics! {
    /// Everything measured, in one place. One per running server: tests that start several
    /// servers in one process count each on its own.
    pub struct Metrics {
        /// SOAP requests answered, by operation and outcome (ok, or the fault code).
        pub requests_total: IntCounterVec["operation", "outcome"];
        /// Time from reading a SOAP request to having its answer, by operation.
        pub request_duration_seconds: HistogramVec["operation"], buckets LATENCY_BUCKETS;
        /// Sessions neither ended nor expired, counted in the database every 15 seconds.
        pub active_sessions: IntGauge;
        /// Password checks (getSession, getBWSession, startSession, confirmId), by result: ok, failed or locked.
        pub logins_total: IntCounterVec["result"];
        /// Sessions ended, by reason (closed, deleted, expired, user-disabled).
        pub sessions_ended_total: IntCounterVec["reason"];
        /// Database connections checked out of the pool.
        pub db_pool_in_use: IntGauge;
        /// Open database connections not checked out.
        pub db_pool_idle: IntGauge;
        /// The pool's largest size (SESSIOND_DB_POOL_SIZE).
        pub db_pool_max: IntGauge;
        /// Callers waiting for a database connection.
        pub db_pool_waiting: IntGauge;
        /// Time to store renewed activity in one transaction; the _count is the number of flushes.
        pub activity_flush_duration_seconds: Histogram, buckets FLUSH_BUCKETS;
        /// Sessions whose renewed activity was stored.
        pub activity_flushed_rows_total: IntCounter;
        /// Activity flushes that failed (the renewals are kept for the next one).
        pub activity_flush_failures_total: IntCounter;
        /// CPU time this process spent storing renewed activity, in microseconds (on PostgreSQL the server's part; the database's is in its backend).
        pub activity_flush_cpu_microseconds_total: IntCounter;
        /// Revocations received from other writers (ended sessions, disabled users).
        pub revocations_received_total: IntCounter;
        /// Reads of the revocation log that came more than the revocation lag after the one before: until then the cache answered nothing.
        pub revocation_reader_late_total: IntCounter;
        /// validateSession answers taken from the cache of sessions seen valid.
        pub session_cache_hits_total: IntCounter;
        /// validateSession calls the cache could not answer.
        pub session_cache_misses_total: IntCounter;
        /// validateSession hits that waited for a late revocation reader's read instead of reading the database (PostgreSQL).
        pub session_cache_waits_total: IntCounter;
        /// Requests to the directory, by operation (connect, service_bind, search, membership, user_bind) and result (ok, invalid_credentials, unreachable, error).
        pub directory_requests_total: IntCounterVec["operation", "result"];
        /// Time a directory request took, by operation.
        pub directory_request_duration_seconds: HistogramVec["operation"], buckets LATENCY_BUCKETS;
        /// Reads of the log of ended sessions that failed (the cache is cleared until one succeeds).
        pub revocation_read_failures_total: IntCounter;
        /// 1 when the last readiness check (GET /readyz, and every 15 seconds) passed, else 0.
        pub ready: IntGauge;
    }
}

/// The request counters and latency histograms of every (operation, outcome) pair, resolved
/// once: recording one is an atomic add on a child found by index, with no label lookup, no
/// allocation and no lock.
pub struct RequestMetrics {
    outcomes: usize,
    counters: Box<[IntCounter]>,
    latency: Box<[Histogram]>,
}

impl RequestMetrics {
    /// `record(op, outcome, …)` takes indexes into these two lists.
    fn resolve(metrics: &Metrics, operations: &[&str], outcomes: &[&str]) -> Self {
        let mut counters = Vec::with_capacity(operations.len() * outcomes.len());
        let mut latency = Vec::with_capacity(operations.len());
        for op in operations {
            for outcome in outcomes {
                counters.push(metrics.requests_total.with_label_values(&[op, outcome]));
            }
            latency.push(metrics.request_duration_seconds.with_label_values(&[op]));
        }
        Self {
            outcomes: outcomes.len(),
            counters: counters.into(),
            latency: latency.into(),
        }
    }

    /// Counts one answered request. Out-of-range indexes are a bug in the caller's table and
    /// are ignored rather than taking the server down.
    #[inline]
    pub fn record(&self, operation: usize, outcome: usize, took: Duration) {
        if let Some(counter) = self.counters.get(operation * self.outcomes + outcome) {
            counter.inc();
        }
        if let Some(histogram) = self.latency.get(operation) {
            histogram.observe(took.as_secs_f64());
        }
    }
}

/// A server's metrics: the registry, and the request table the SOAP endpoint records into.
pub struct Telemetry {
    pub metrics: Metrics,
    pub requests: RequestMetrics,
}

impl Telemetry {
    /// Declares every metric; `operations` and `outcomes` are the request labels' only values.
    pub fn new(operations: &[&str], outcomes: &[&str]) -> Self {
        let metrics = Metrics::declare();
        let requests = RequestMetrics::resolve(&metrics, operations, outcomes);
        Self { metrics, requests }
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        // Encoding into a Vec cannot fail but for a metric family that is malformed, which
        // `declare` rules out.
        let _ = TextEncoder::new().encode(&self.metrics.registry.gather(), &mut out);
        String::from_utf8(out).unwrap_or_default()
    }

    /// The content type of [`Telemetry::render`]'s text.
    pub fn content_type() -> &'static str {
        "text/plain; version=0.0.4; charset=utf-8"
    }

    pub fn login(&self, result: LoginResult) {
        self.metrics
            .logins_total
            .with_label_values(&[result.as_str()])
            .inc();
    }

    /// A session was stored: the active-sessions gauge counts it at once rather than at the
    /// next count from the database.
    pub fn session_opened(&self) {
        self.metrics.active_sessions.inc();
    }

    /// Sessions were ended: counted, and taken off the active-sessions gauge until the next
    /// count from the database corrects what this cannot see (sessions that merely expired,
    /// ends on other instances).
    pub fn session_ended(&self, reason: &str, how_many: u64) {
        let gauge = &self.metrics.active_sessions;
        gauge.set((gauge.get() - i64::try_from(how_many).unwrap_or(i64::MAX)).max(0));
        if how_many > 0 {
            self.metrics
                .sessions_ended_total
                .with_label_values(&[reason])
                .inc_by(how_many);
        }
    }

    pub fn activity_flushed(&self, rows: usize, took: Duration, cpu: Duration) {
        self.metrics
            .activity_flush_duration_seconds
            .observe(took.as_secs_f64());
        self.metrics.activity_flushed_rows_total.inc_by(rows as u64);
        self.metrics
            .activity_flush_cpu_microseconds_total
            .inc_by(cpu.as_micros() as u64);
    }
}

/// The CPU time the calling thread has used so far: a flush's own cost, apart from the time
/// it waited for locks or for the CPUs under load.
pub fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes the timespec it is given and reads nothing else.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return Duration::ZERO;
    }
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// What a password login came to, as `sessiond_logins_total` labels it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginResult {
    Ok,
    Failed,
    Locked,
}

impl LoginResult {
    pub fn as_str(self) -> &'static str {
        match self {
            LoginResult::Ok => "ok",
            LoginResult::Failed => "failed",
            LoginResult::Locked => "locked",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_metric_is_exported_with_its_doc_comment_as_help() {
        let t = Telemetry::new(&["validateSession"], &["ok"]);
        let text = t.render();
        assert!(text.contains("# HELP sessiond_active_sessions Sessions neither ended"));
        assert!(text.contains("# TYPE sessiond_request_duration_seconds histogram"));
        assert!(text.contains("# TYPE sessiond_activity_flushed_rows_total counter"));
        assert!(text.contains("sessiond_session_cache_misses_total 0"));
    }

    #[test]
    fn a_recorded_request_counts_under_its_operation_and_outcome_only() {
        let t = Telemetry::new(
            &["getSession", "validateSession"],
            &["ok", "INVALID_SESSION"],
        );
        t.requests.record(1, 1, Duration::from_micros(300));
        t.requests.record(1, 1, Duration::from_micros(300));
        let text = t.render();
        assert!(text.contains(
            "sessiond_requests_total{operation=\"validateSession\",outcome=\"INVALID_SESSION\"} 2"
        ));
        assert!(text
            .contains("sessiond_requests_total{operation=\"validateSession\",outcome=\"ok\"} 0"));
        assert!(text.contains(
            "sessiond_request_duration_seconds_bucket{operation=\"validateSession\",le=\"0.0005\"} 2"
        ));
    }
}
