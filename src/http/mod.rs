//! The hallway: actix wiring, the only room that sees both `soap` and `service`. Routes and
//! their shared state here; the SOAP endpoint (`endpoint`), the operation table's handlers
//! (`dispatch`), streamed array answers (`streaming`) and the WSDL route (`wsdl`) beside it.

mod dispatch;
mod endpoint;
pub mod health;
pub mod origin;
mod streaming;
mod wsdl;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use actix_web::web;

use crate::service::SessionService;

/// What every request handler shares.
pub struct AppState {
    pub service: Arc<SessionService>,
    pub public_url: Option<String>,
    pub max_body_size: usize,
    pub trusted_proxies: Vec<IpAddr>,
    /// Answer validateSession on the HTTP worker itself, as the service advises
    /// ([`SessionService::validate_is_cheap`]): asked once here, not on every call.
    pub inline_validate: bool,
    /// How long the body may take to arrive once the headers are in (actix bounds only the
    /// headers): a client that stalls mid-body is answered 408 and its connection closed.
    pub client_timeout: Duration,
    pub telemetry: Arc<crate::telemetry::Telemetry>,
}

pub use endpoint::return_freed_memory;

/// Mounts the endpoint at each path: POST for SOAP, GET for the WSDL.
pub fn routes(paths: Vec<String>) -> impl Fn(&mut web::ServiceConfig) {
    move |cfg| {
        for path in &paths {
            cfg.service(
                web::resource(path.as_str())
                    .route(web::post().to(endpoint::soap_endpoint))
                    .route(web::get().to(wsdl::wsdl_endpoint)),
            );
        }
        #[cfg(feature = "bench-baseline")]
        cfg.route("/bench/baseline", web::post().to(baseline));
    }
}

/// The benchmark's yardstick: reads the body like the endpoint does, answers a fixed
/// validateSession response, and does nothing else.
#[cfg(feature = "bench-baseline")]
async fn baseline(payload: web::Payload) -> actix_web::HttpResponse {
    const ANSWER: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><soap:Envelope \
        xmlns:soap=\"http://schemas.xmlsoap.org/soap/envelope/\" \
        xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\"><soap:Body>\
        <tns:validateSessionResponse xmlns:tns=\"urn:sessiond:session:1\"><tns:valid>true</tns:valid>\
        </tns:validateSessionResponse></soap:Body></soap:Envelope>";
    let _ = payload.to_bytes_limited(1024 * 1024).await;
    actix_web::HttpResponse::Ok()
        .content_type(crate::soap::SoapVersion::V11.content_type())
        .body(ANSWER)
}
