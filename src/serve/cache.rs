//! The encoded exposition of one published snapshot: each format encoded once, when the
//! first scrape asks for it, and gzip-compressed once, when the first scraper accepts
//! gzip. Every later scrape of that snapshot is a copy of bytes.

use std::io::Write as _;
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::OnceCell;

/// The two text formats a scraper can ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    OpenMetrics,
    Prometheus,
}

impl Format {
    pub fn content_type(self) -> &'static str {
        match self {
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
            Format::Prometheus => prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
        }
    }
}

/// One format's body: plain, and gzip once asked for.
#[derive(Debug)]
pub struct Body {
    pub plain: Bytes,
    gzip: OnceCell<Bytes>,
}

impl Body {
    pub fn new(plain: String) -> Body {
        Body {
            plain: Bytes::from(plain),
            gzip: OnceCell::new(),
        }
    }

    /// The gzip-compressed body, compressed on the first call.
    pub fn gzip(&self) -> Bytes {
        if let Some(z) = self.gzip.get() {
            return z.clone();
        }
        let z = Bytes::from(gzip(&self.plain));
        // A concurrent first call may have set it: either is the same bytes.
        let _ = self.gzip.set(z.clone());
        z
    }

    /// Where the gzip body is kept: a server awaits one compression for all its scrapes.
    pub fn gzip_cell(&self) -> &OnceCell<Bytes> {
        &self.gzip
    }
}

/// Compresses with gzip's fastest level: the exposition is repetitive text, so level 1
/// gets most of level 6's ratio at a fraction of its cost (BENCHMARKS.md).
pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(
        Vec::with_capacity(data.len() / 8),
        flate2::Compression::fast(),
    );
    // Writing to a Vec cannot fail.
    let _ = e.write_all(data);
    e.finish().unwrap_or_default()
}

/// The bodies of one snapshot, by format; each filled by the first scrape that wants it.
/// A server awaits the cell ([`Encodings::cell`]), so that concurrent scrapes share one
/// encoding and only the one that encodes costs work.
#[derive(Debug, Default)]
pub struct Encodings {
    openmetrics: OnceCell<Arc<Body>>,
    prometheus: OnceCell<Arc<Body>>,
}

impl Encodings {
    pub fn cell(&self, format: Format) -> &OnceCell<Arc<Body>> {
        match format {
            Format::OpenMetrics => &self.openmetrics,
            Format::Prometheus => &self.prometheus,
        }
    }

    /// The body in `format`, encoded by `encode` if not yet (blocking callers: tests and
    /// benchmarks; concurrent first calls may each encode).
    pub fn get(
        &self,
        format: Format,
        encode: impl FnOnce() -> Result<String, std::fmt::Error>,
    ) -> Result<Arc<Body>, std::fmt::Error> {
        let cell = self.cell(format);
        if let Some(b) = cell.get() {
            return Ok(Arc::clone(b));
        }
        let b = Arc::new(Body::new(encode()?));
        let _ = cell.set(Arc::clone(&b));
        Ok(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read as _;

    #[test]
    fn each_format_once_and_gzip_decodes_to_the_plain_body() {
        let e = Encodings::default();
        let mut calls = 0;
        let text = "a 1\n".repeat(10_000);
        for _ in 0..3 {
            let b = e
                .get(Format::Prometheus, || {
                    calls += 1;
                    Ok(text.clone())
                })
                .unwrap();
            assert_eq!(b.plain, text.as_bytes());
        }
        assert_eq!(calls, 1);
        let b = e.get(Format::Prometheus, || unreachable!()).unwrap();
        let z = b.gzip();
        assert!(z.len() * 50 < text.len(), "{} bytes", z.len());
        assert_eq!(b.gzip(), z, "compressed once");
        let mut out = String::new();
        flate2::read::GzDecoder::new(&z[..])
            .read_to_string(&mut out)
            .unwrap();
        assert_eq!(out, text);
        assert!(e.get(Format::OpenMetrics, || Err(std::fmt::Error)).is_err());
        let b = e.get(Format::OpenMetrics, || Ok("x".into())).unwrap();
        assert_eq!(b.plain, "x", "a failed encoding is not cached");
        assert!(e.cell(Format::OpenMetrics).get().is_some());
    }
}
