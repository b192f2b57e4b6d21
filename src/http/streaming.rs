//! Array answers: whole, with a Content-Length, when they fit in one page; otherwise streamed
//! (chunked) a page at a time, so memory stays flat however many sessions there are.

use actix_web::{web, HttpResponse};
use futures_util::StreamExt;

use super::dispatch::items;
use super::AppState;
use crate::service::{ArrayDialect, ServiceError, SessionPages, SessionView};
use crate::soap::{response, Answer, ArrayOf, Operation, Response, SoapVersion};

/// Why a streamed array response was cut short.
#[derive(Debug, thiserror::Error)]
#[error("array response cut short: {0}")]
struct StreamCut(String);

pub(super) fn listing_response(
    version: SoapVersion,
    operation: Operation,
    of: ArrayOf,
    first: Vec<SessionView>,
    pages: SessionPages,
    state: &AppState,
) -> HttpResponse {
    // Every caller gets the trailing nil element but a `bw` one.
    let nil_terminated = pages.dialect() != ArrayDialect::Bw;
    let ok = || {
        let mut r = HttpResponse::Ok();
        r.content_type(version.content_type());
        r
    };
    let first = items(of, first);
    if pages.is_done() {
        let answer = Answer::List {
            items: first,
            nil_terminated,
        };
        return ok().body(Response::new(operation, answer).encode(version));
    }
    let head = web::Bytes::from(response::list_open(version, operation) + &first.encode());
    let service = state.service.clone();
    let rest = futures_util::stream::unfold(Some(pages), move |pages| {
        let service = service.clone();
        async move {
            let mut pages = pages?;
            if pages.is_done() {
                let tail = response::list_close(operation, nil_terminated);
                return Some((Ok(web::Bytes::from(tail)), None));
            }
            let page = web::block(move || {
                let views = service.next_page(&mut pages)?;
                Ok::<_, ServiceError>((items(of, views).encode(), pages))
            })
            .await;
            match page {
                Ok(Ok((chunk, pages))) => Some((Ok(web::Bytes::from(chunk)), Some(pages))),
                // The status line is gone already: all that is left is to cut the response
                // short, which the client sees as a broken one rather than a partial list.
                Ok(Err(e)) => Some((Err(StreamCut(e.to_string())), None)),
                Err(e) => Some((Err(StreamCut(e.to_string())), None)),
            }
        }
    });
    let body = futures_util::stream::once(async move { Ok(head) }).chain(rest);
    ok().streaming(body)
}
