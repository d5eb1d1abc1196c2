//! What each request gets: `/metrics` in OpenMetrics text when the scraper asks for it
//! (Prometheus does), else the Prometheus text format 0.0.4, gzip-compressed when
//! accepted; `/healthz` is 200 once a snapshot is published; `/` links both. Basic auth
//! guards everything but `/healthz` when the web config has users. At most
//! `--web.max-requests` requests do work at once (encoding, compressing, bcrypt): beyond
//! them, 503. Scrapes that find the snapshot encoded, or await its one encoding, do none.

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::http::request::Parts;
use hyper::{Method, Request, Response, StatusCode};
use tokio::sync::Semaphore;

use super::cache::{self, Body, Format};
use super::exposition::Exposition;
use super::webconfig::{WebConfig, WebSettings};

/// What every connection shares.
pub struct App {
    pub expo: Exposition,
    pub web: Arc<WebConfig>,
    /// Scrapes answered at once (`--web.max-requests`).
    pub scrapes: Arc<Semaphore>,
}

pub type Answer = Response<Full<Bytes>>;

/// Which format an `Accept` header asks for: OpenMetrics when it names it (with a
/// non-zero weight), else the Prometheus text format.
pub fn wants_openmetrics(accept: Option<&str>) -> bool {
    accept.is_some_and(|a| {
        a.split(',').any(|part| {
            let mut fields = part.split(';').map(str::trim);
            let media = fields.next().unwrap_or_default();
            media.eq_ignore_ascii_case("application/openmetrics-text") && !zero_q(fields)
        })
    })
}

/// Whether an `Accept-Encoding` header accepts gzip (with a non-zero weight).
pub fn accepts_gzip(accept_encoding: Option<&str>) -> bool {
    accept_encoding.is_some_and(|a| {
        a.split(',').any(|part| {
            let mut fields = part.split(';').map(str::trim);
            let coding = fields.next().unwrap_or_default();
            coding.eq_ignore_ascii_case("gzip") && !zero_q(fields)
        })
    })
}

fn zero_q<'a>(mut params: impl Iterator<Item = &'a str>) -> bool {
    params.any(|f| {
        f.strip_prefix("q=")
            .and_then(|q| q.parse::<f64>().ok())
            .is_some_and(|q| q == 0.0)
    })
}

fn text(status: StatusCode, body: &'static str) -> Answer {
    let mut r = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

fn header_str(h: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

/// Answers one request; never fails (errors are statuses).
pub async fn answer(app: Arc<App>, req: Request<Incoming>) -> Result<Answer, Infallible> {
    let settings = app.web.current();
    // The request's body is never read: nothing here takes one.
    let (req, _body) = req.into_parts();
    let head = req.method == Method::HEAD;
    let mut r = route(&app, &settings, &req).await;
    for (n, v) in &settings.headers {
        r.headers_mut().insert(n.clone(), v.clone());
    }
    if head {
        *r.body_mut() = Full::new(Bytes::new());
    }
    Ok(r)
}

async fn route(app: &App, settings: &WebSettings, req: &Parts) -> Answer {
    if !matches!(req.method, Method::GET | Method::HEAD) {
        let mut r = text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
        r.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return r;
    }
    let path = req.uri.path();
    // Readiness says nothing worth guarding, and kubelet's probe has no credentials.
    if path == "/healthz" {
        return if app.expo.is_ready() {
            text(StatusCode::OK, "ok\n")
        } else {
            text(StatusCode::SERVICE_UNAVAILABLE, "starting\n")
        };
    }
    if let Some(users) = &settings.users {
        let auth = req.headers.get(header::AUTHORIZATION).cloned();
        let ok = match users.remembered(auth.as_ref().map(|v| v.as_bytes())) {
            true => Ok(true),
            // bcrypt costs tens of milliseconds: off the serving thread, and limited.
            false => {
                let users = Arc::clone(users);
                limited(app, move || {
                    Some(users.check(auth.as_ref().map(|v| v.as_bytes())))
                })
                .await
            }
        };
        match ok {
            Ok(true) => {}
            Err(Failed::Busy) => {
                return text(StatusCode::SERVICE_UNAVAILABLE, "too many requests\n")
            }
            _ => {
                let mut r = text(StatusCode::UNAUTHORIZED, "unauthorized\n");
                r.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Basic realm=\"sirqtop\""),
                );
                return r;
            }
        }
    }
    match path {
        "/metrics" => metrics(app, &req.headers).await,
        "/" => {
            let mut r = text(
                StatusCode::OK,
                "<html><head><title>sirqtop</title></head><body><h1>sirqtop</h1>\
                 <p><a href=\"/metrics\">/metrics</a> · <a href=\"/healthz\">/healthz</a></p>\
                 </body></html>\n",
            );
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            );
            r
        }
        _ => text(StatusCode::NOT_FOUND, "not found\n"),
    }
}

/// Why a scrape got no body.
enum Failed {
    /// `--web.max-requests` scrapes are doing work already.
    Busy,
    Encoding,
}

/// Runs `work` off the serving thread, holding one of the `--web.max-requests` permits.
async fn limited<T: Send + 'static>(
    app: &App,
    work: impl FnOnce() -> Option<T> + Send + 'static,
) -> Result<T, Failed> {
    let _permit = Arc::clone(&app.scrapes)
        .try_acquire_owned()
        .map_err(|_| Failed::Busy)?;
    tokio::task::spawn_blocking(work)
        .await
        .ok()
        .flatten()
        .ok_or(Failed::Encoding)
}

/// The body of the current snapshot: encoded (and compressed) once, by the first scrape
/// that needs it; concurrent scrapes await that one and cost nothing.
async fn metrics_body(app: &App, format: Format, gzip: bool) -> Result<Bytes, Failed> {
    let cur = app.expo.current();
    let body = match cur.cell(format) {
        Some(cell) => {
            let c = cur.clone();
            let encode = || limited(app, move || c.encode(format).ok().map(Body::new));
            Arc::clone(
                cell.get_or_try_init(|| async { Ok(Arc::new(encode().await?)) })
                    .await?,
            )
        }
        // Before the first snapshot: only the build info.
        None => Arc::new(Body::new(cur.encode(format).map_err(|_| Failed::Encoding)?)),
    };
    if !gzip {
        return Ok(body.plain.clone());
    }
    let plain = body.plain.clone();
    let compress = || limited(app, move || Some(Bytes::from(cache::gzip(&plain))));
    Ok(body.gzip_cell().get_or_try_init(compress).await?.clone())
}

async fn metrics(app: &App, headers: &HeaderMap) -> Answer {
    let format = if wants_openmetrics(header_str(headers, header::ACCEPT)) {
        Format::OpenMetrics
    } else {
        Format::Prometheus
    };
    let gzip = accepts_gzip(header_str(headers, header::ACCEPT_ENCODING));
    let body = match metrics_body(app, format, gzip).await {
        Ok(b) => b,
        Err(Failed::Busy) => {
            return text(
                StatusCode::SERVICE_UNAVAILABLE,
                "too many concurrent scrapes (--web.max-requests)\n",
            )
        }
        Err(Failed::Encoding) => {
            return text(
                StatusCode::INTERNAL_SERVER_ERROR,
                "encoding the metrics failed\n",
            )
        }
    };
    let mut r = Response::new(Full::new(body));
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    h.insert(
        header::VARY,
        HeaderValue::from_static("Accept, Accept-Encoding"),
    );
    if gzip {
        h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_negotiation() {
        // What Prometheus 2.x sends.
        assert!(wants_openmetrics(Some(
            "application/openmetrics-text;version=1.0.0,application/openmetrics-text;\
             version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
        )));
        assert!(!wants_openmetrics(Some("text/plain;version=0.0.4")));
        assert!(!wants_openmetrics(Some("*/*")));
        assert!(!wants_openmetrics(None));
        assert!(!wants_openmetrics(Some(
            "application/openmetrics-text;q=0, text/plain"
        )));
        assert!(accepts_gzip(Some("gzip")));
        assert!(accepts_gzip(Some("identity, GZIP;q=0.5")));
        assert!(!accepts_gzip(Some("gzip;q=0, identity")));
        assert!(!accepts_gzip(Some("deflate")));
        assert!(!accepts_gzip(None));
    }
}
