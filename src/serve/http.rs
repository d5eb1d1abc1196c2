//! The scrape endpoint: a synchronous tiny_http server on its own thread. `/metrics` in
//! OpenMetrics text when the scraper asks for it (Prometheus does), else the Prometheus
//! text format 0.0.4; `/healthz` is 200 once a snapshot is published.

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::thread::JoinHandle;

use prometheus_client::registry::Registry;
use tiny_http::{Header, Method, Request, Response};

use super::exposition::{encode_openmetrics, encode_prometheus, Exposition};
use crate::error::{Error, Result};

pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";
pub const PROMETHEUS_CONTENT_TYPE: &str =
    prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// A bound, not yet serving, HTTP server.
pub struct Server {
    inner: Arc<tiny_http::Server>,
    addr: SocketAddr,
}

/// The serving thread; [`Running::stop`] ends it.
pub struct Running {
    inner: Arc<tiny_http::Server>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    pub fn bind(addr: SocketAddr) -> Result<Server> {
        let listener = TcpListener::bind(addr).map_err(|error| Error::Listen { addr, error })?;
        let addr = listener.local_addr()?;
        let inner = tiny_http::Server::from_listener(listener, None)
            .map_err(|e| Error::Load(format!("HTTP server on {addr}: {e}")))?;
        Ok(Server {
            inner: Arc::new(inner),
            addr,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves `expo` until stopped.
    pub fn spawn(self, expo: Exposition) -> Running {
        let inner = Arc::clone(&self.inner);
        let registry = expo.registry();
        let thread = std::thread::Builder::new()
            .name("sirqtop-http".into())
            .spawn(move || {
                for req in inner.incoming_requests() {
                    // A scraper that hangs up mid-response is its own problem.
                    let _ = answer(req, &registry, &expo);
                }
            })
            .ok();
        Running {
            inner: self.inner,
            thread,
        }
    }
}

impl Running {
    pub fn stop(mut self) {
        self.inner.unblock();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Which format an `Accept` header asks for: OpenMetrics when it names it (with a
/// non-zero weight), else the Prometheus text format.
pub fn wants_openmetrics(accept: Option<&str>) -> bool {
    accept.is_some_and(|a| {
        a.split(',').any(|part| {
            let mut fields = part.split(';').map(str::trim);
            let media = fields.next().unwrap_or_default();
            let zero_q = fields.any(|f| {
                f.strip_prefix("q=")
                    .and_then(|q| q.parse::<f64>().ok())
                    .is_some_and(|q| q == 0.0)
            });
            media.eq_ignore_ascii_case("application/openmetrics-text") && !zero_q
        })
    })
}

/// Adds a header; ours are ASCII constants, which tiny_http always accepts.
fn with_header<R: std::io::Read>(r: Response<R>, name: &str, value: &str) -> Response<R> {
    match Header::from_bytes(name.as_bytes(), value.as_bytes()) {
        Ok(h) => r.with_header(h),
        Err(()) => r,
    }
}

fn answer(req: Request, registry: &Registry, expo: &Exposition) -> std::io::Result<()> {
    let head = *req.method() == Method::Head;
    if !matches!(req.method(), Method::Get | Method::Head) {
        let r = Response::from_string("method not allowed\n").with_status_code(405);
        return req.respond(with_header(r, "Allow", "GET, HEAD"));
    }
    let path = req.url().split('?').next().unwrap_or("/").to_string();
    let (status, ctype, body) = match path.as_str() {
        "/metrics" => {
            let accept = req
                .headers()
                .iter()
                .find(|h| h.field.equiv("Accept"))
                .map(|h| h.value.as_str().to_string());
            let om = wants_openmetrics(accept.as_deref());
            let text = if om {
                encode_openmetrics(registry)
            } else {
                encode_prometheus(registry)
            };
            match text {
                Ok(t) => (
                    200,
                    if om {
                        OPENMETRICS_CONTENT_TYPE
                    } else {
                        PROMETHEUS_CONTENT_TYPE
                    },
                    t,
                ),
                Err(_) => (500, "text/plain", "encoding the metrics failed\n".into()),
            }
        }
        "/healthz" if expo.is_ready() => (200, "text/plain", "ok\n".into()),
        "/healthz" => (503, "text/plain", "starting\n".into()),
        "/" => (
            200,
            "text/html",
            "<html><head><title>sirqtop</title></head><body><h1>sirqtop</h1>\
             <p><a href=\"/metrics\">/metrics</a> · <a href=\"/healthz\">/healthz</a></p>\
             </body></html>\n"
                .into(),
        ),
        _ => (404, "text/plain", "not found\n".into()),
    };
    let body = if head { String::new() } else { body };
    let r = Response::from_string(body).with_status_code(status);
    req.respond(with_header(r, "Content-Type", ctype))
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
    }
}
