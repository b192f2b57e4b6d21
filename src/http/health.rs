//! The operator's endpoints: `GET /healthz` (the process serves; no database), `GET /readyz`
//! (the database answers and its migrations are current) and `GET /metrics` (Prometheus
//! text). Mounted on the admin listener when there is one, else beside SOAP.
//!
//! Also the label values of the request metrics: the contract's operations and the outcomes
//! (`ok` or a fault code), so the SOAP endpoint records by index.

use std::sync::Arc;
use std::time::Instant;

use actix_web::{web, HttpResponse};

use crate::service::SessionService;
use crate::soap::{FaultCode, Operation};
use crate::telemetry::Telemetry;

/// The operation label of a request refused before its operation was known.
pub const UNKNOWN_OPERATION: usize = Operation::ALL.len();

/// What the operator's endpoints read.
pub struct Observability {
    pub service: Arc<SessionService>,
    pub telemetry: Arc<Telemetry>,
}

/// The metrics of a server, with the request labels of this contract.
pub fn telemetry() -> Telemetry {
    let mut operations: Vec<&str> = Operation::ALL.iter().map(|o| o.name()).collect();
    operations.push("unknown");
    let mut outcomes = vec!["ok"];
    outcomes.extend(FaultCode::ALL.iter().map(|c| c.as_str()));
    Telemetry::new(&operations, &outcomes)
}

/// The request-metrics index of an operation.
pub fn operation_index(operation: Operation) -> usize {
    operation as usize
}

/// The request-metrics index of an outcome: 0 for an answer, else the fault code's.
pub fn outcome_index(fault: Option<FaultCode>) -> usize {
    fault.map_or(0, |code| code as usize + 1)
}

/// Records a SOAP request answered since `started`.
pub fn record(
    telemetry: &Telemetry,
    operation: Option<Operation>,
    fault: Option<FaultCode>,
    started: Instant,
) {
    telemetry.requests.record(
        operation.map_or(UNKNOWN_OPERATION, operation_index),
        outcome_index(fault),
        started.elapsed(),
    );
}

/// Mounts the three endpoints.
pub fn config(observability: web::Data<Observability>) -> impl Fn(&mut web::ServiceConfig) {
    move |cfg| {
        cfg.app_data(observability.clone())
            .route("/healthz", web::get().to(healthz))
            .route("/readyz", web::get().to(readyz))
            .route("/metrics", web::get().to(metrics));
    }
}

async fn healthz() -> HttpResponse {
    text(HttpResponse::Ok(), "ok\n".into())
}

async fn readyz(state: web::Data<Observability>) -> HttpResponse {
    let service = state.service.clone();
    let answer = web::block(move || service.readiness()).await;
    let ready = matches!(answer, Ok(Ok(())));
    state.telemetry.metrics.ready.set(i64::from(ready));
    match answer {
        Ok(Ok(())) => text(HttpResponse::Ok(), "ready\n".into()),
        Ok(Err(reason)) => text(HttpResponse::ServiceUnavailable(), format!("{reason}\n")),
        Err(_) => text(
            HttpResponse::ServiceUnavailable(),
            "no thread free to check the database\n".into(),
        ),
    }
}

async fn metrics(state: web::Data<Observability>) -> HttpResponse {
    // The pool's state is read now, at the scrape: a lock of r2d2's, once per scrape.
    let pool = state.service.pool_status();
    let m = &state.telemetry.metrics;
    m.db_pool_in_use.set(i64::from(pool.in_use));
    m.db_pool_idle.set(i64::from(pool.idle));
    m.db_pool_waiting
        .set(i64::try_from(pool.waiting).unwrap_or(i64::MAX));
    HttpResponse::Ok()
        .content_type(Telemetry::content_type())
        .body(state.telemetry.render())
}

fn text(mut builder: actix_web::HttpResponseBuilder, body: String) -> HttpResponse {
    builder
        .content_type("text/plain; charset=utf-8")
        .insert_header(("Cache-Control", "no-store"))
        .body(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_operation_and_outcome_has_its_own_label_slot() {
        for (i, op) in Operation::ALL.iter().enumerate() {
            assert_eq!(operation_index(*op), i, "{}", op.name());
        }
        for (i, code) in FaultCode::ALL.iter().enumerate() {
            assert_eq!(outcome_index(Some(*code)), i + 1, "{}", code.as_str());
        }
        assert_eq!(outcome_index(None), 0);
    }
}
