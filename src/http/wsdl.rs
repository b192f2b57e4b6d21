//! `GET <endpoint>?wsdl`: the description, addressed to the URL the client used (or the
//! configured public URL); without `?wsdl`, a line saying what the endpoint is.

use actix_web::http::header::{self, HeaderValue};
use actix_web::{web, HttpRequest, HttpResponse};

use super::{origin, AppState};
use crate::soap::wsdl::Description;

pub(super) async fn wsdl_endpoint(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let Some(description) = Description::from_query(req.query_string()) else {
        return HttpResponse::Ok()
            .content_type("text/plain; charset=utf-8")
            .body(format!(
                "sessiond SOAP endpoint: POST SOAP 1.1 or 1.2 requests here. \
             Description: {0}?wsdl (SOAP 1.1), {0}?wsdl=soap12 (SOAP 1.1 and 1.2)\n",
                req.path()
            ));
    };
    let address = match &state.public_url {
        Some(base) => format!("{base}{}", req.path()),
        // Forwarded host and scheme only from a trusted proxy: a client's own would poison
        // a cache in front that serves the description to everyone.
        None => format!(
            "{}://{}{}",
            origin::scheme(&req, &state.trusted_proxies),
            origin::host(&req, &state.trusted_proxies),
            req.path()
        ),
    };
    HttpResponse::Ok()
        .insert_header((
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/xml; charset=utf-8"),
        ))
        .body(description.render(&address))
}
