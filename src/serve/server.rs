//! The scrape endpoint's server: hyper's HTTP/1.1 on a single-threaded tokio runtime
//! confined to one serving thread (plus at most [`BLOCKING_THREADS`] for bcrypt and
//! encoding), so that no client can cost a thread. Every limit a client could otherwise
//! stretch is bounded: connections, scrapes in flight, the time to send a request head
//! and its size, the time a client may stop reading, and how long a connection may idle.
//! TLS (rustls) and basic auth come from the web config ([`super::webconfig`]).

use std::io;
use std::net::{SocketAddr, TcpListener};
use std::os::fd::AsRawFd;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::{Notify, Semaphore};

use super::exposition::Exposition;
use super::routes::{answer, App};
use super::webconfig::WebConfig;
use crate::error::{Error, Result};

/// A request head (and a TLS handshake) must arrive within this.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(5);
/// A request head larger than this is answered 431 and the connection closed.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;
/// A client that reads nothing of a response for this long is cut off.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// A keep-alive connection with no request for this long is closed.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(120);
/// Connections open at once (`--web.max-connections`); beyond it, new ones are closed.
pub const DEFAULT_MAX_CONNECTIONS: usize = 2048;
/// Scrapes answered at once (`--web.max-requests`, node_exporter's default); beyond it, 503.
pub const DEFAULT_MAX_REQUESTS: usize = 40;
/// Threads for bcrypt checks and encoding, so that the serving thread never waits on them.
pub const BLOCKING_THREADS: usize = 2;
/// Connections the kernel queues for accepting (capped by net.core.somaxconn).
const LISTEN_BACKLOG: i32 = 4096;
/// After the process runs out of file descriptors, accepting pauses this long.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_connections: usize,
    pub max_requests: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_requests: DEFAULT_MAX_REQUESTS,
        }
    }
}

/// A bound, not yet serving, server.
pub struct Server {
    listener: TcpListener,
    addr: SocketAddr,
    web: Arc<WebConfig>,
    limits: Limits,
}

/// The serving thread; [`Running::stop`] ends it.
pub struct Running {
    stop: Arc<Notify>,
    thread: Option<JoinHandle<()>>,
}

/// Raises the soft limit of open files to the hard one: each connection is a descriptor,
/// and the default soft limit (often 1024) is below the connection cap.
fn raise_fd_limit() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit with a valid pointer to an rlimit we own.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

impl Server {
    pub fn bind(addr: SocketAddr, web: WebConfig, limits: Limits) -> Result<Server> {
        let listener = TcpListener::bind(addr).map_err(|error| Error::Listen { addr, error })?;
        // A longer accept queue than std's 128: a burst of connections (500 scrapers, or
        // an attacker's) must not overflow it, or others' SYNs wait a second to retry.
        // SAFETY: listen(2) again on our listening socket only changes its backlog.
        unsafe { libc::listen(listener.as_raw_fd(), LISTEN_BACKLOG) };
        listener.set_nonblocking(true)?;
        raise_fd_limit();
        Ok(Server {
            addr: listener.local_addr()?,
            listener,
            web: Arc::new(web),
            limits,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Whether it serves HTTPS.
    pub fn is_tls(&self) -> bool {
        self.web.is_tls()
    }

    /// Serves `expo` on a thread of its own until stopped.
    pub fn spawn(self, expo: Exposition) -> Result<Running> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .max_blocking_threads(BLOCKING_THREADS)
            .thread_name("sirqtop-http-work")
            .build()?;
        let stop = Arc::new(Notify::new());
        let app = Arc::new(App {
            expo,
            web: self.web,
            scrapes: Arc::new(Semaphore::new(self.limits.max_requests.max(1))),
        });
        let (listener, max) = (self.listener, self.limits.max_connections.max(1));
        let told = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("sirqtop-http".into())
            .spawn(move || {
                rt.block_on(async move {
                    match tokio::net::TcpListener::from_std(listener) {
                        Ok(l) => accept_loop(l, app, max, &told).await,
                        Err(e) => eprintln!("sirqtop: serving: {e}"),
                    }
                });
                // Open connections end with the runtime; bcrypt or encoding under way is
                // not waited for.
                rt.shutdown_background();
            })?;
        Ok(Running {
            stop,
            thread: Some(thread),
        })
    }
}

impl Running {
    pub fn stop(mut self) {
        self.stop.notify_one();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Out of descriptors or memory for a socket: the condition passes, the loop must not end.
fn is_resource_exhaustion(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    )
}

/// Decrements the open-connection count when a connection ends, however it ends.
struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

async fn accept_loop(l: tokio::net::TcpListener, app: Arc<App>, max: usize, stop: &Notify) {
    let open = Arc::new(AtomicUsize::new(0));
    loop {
        let accepted = tokio::select! {
            _ = stop.notified() => return,
            a = l.accept() => a,
        };
        match accepted {
            Ok((stream, _)) => {
                if open.load(Ordering::Relaxed) >= max {
                    // At the cap: closed at once, costing nothing.
                    drop(stream);
                    continue;
                }
                open.fetch_add(1, Ordering::Relaxed);
                let slot = Slot(Arc::clone(&open));
                tokio::spawn(connection(stream, Arc::clone(&app), slot));
            }
            Err(e) if is_resource_exhaustion(&e) => {
                tokio::time::sleep(ACCEPT_BACKOFF).await;
            }
            // A connection reset before it was accepted, and the like.
            Err(_) => {}
        }
    }
}

async fn connection(stream: TcpStream, app: Arc<App>, _slot: Slot) {
    let _ = stream.set_nodelay(true);
    let activity = Arc::new(Activity::new());
    let io = Watched {
        inner: stream,
        activity: Arc::clone(&activity),
    };
    let tls = app.web.current().tls.clone();
    match tls {
        Some(cfg) => {
            let acceptor = tokio_rustls::TlsAcceptor::from(cfg);
            // Plain HTTP, a bad certificate or a stalled handshake: closed, nothing served.
            let Ok(Ok(s)) = tokio::time::timeout(HEADER_READ_TIMEOUT, acceptor.accept(io)).await
            else {
                return;
            };
            http(TokioIo::new(s), app, &activity).await;
        }
        None => http(TokioIo::new(io), app, &activity).await,
    }
}

async fn http<I>(io: I, app: Arc<App>, activity: &Activity)
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let svc = service_fn(move |req| answer(Arc::clone(&app), req));
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .max_buf_size(MAX_HEADER_BYTES)
        .keep_alive(true)
        .serve_connection(io, svc);
    tokio::pin!(conn);
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    loop {
        tokio::select! {
            _ = &mut conn => return,
            _ = tick.tick() => {
                if activity.stalled(WRITE_TIMEOUT, IDLE_TIMEOUT) {
                    // Dropping the connection closes the socket.
                    return;
                }
            }
        }
    }
}

/// When a connection last read something, and since when a write has been waiting.
struct Activity {
    base: Instant,
    last_read_ms: AtomicU64,
    /// u64::MAX: no write is waiting.
    write_waiting_since_ms: AtomicU64,
}

impl Activity {
    fn new() -> Activity {
        Activity {
            base: Instant::now(),
            last_read_ms: AtomicU64::new(0),
            write_waiting_since_ms: AtomicU64::new(u64::MAX),
        }
    }

    fn now_ms(&self) -> u64 {
        self.base.elapsed().as_millis() as u64
    }

    /// A client that stopped reading (a write waiting too long), or an idle connection.
    fn stalled(&self, write_timeout: Duration, idle_timeout: Duration) -> bool {
        let now = self.now_ms();
        let waiting = self.write_waiting_since_ms.load(Ordering::Relaxed);
        if waiting != u64::MAX {
            return now.saturating_sub(waiting) >= write_timeout.as_millis() as u64;
        }
        now.saturating_sub(self.last_read_ms.load(Ordering::Relaxed))
            >= idle_timeout.as_millis() as u64
    }
}

/// A TCP stream that notes its progress in an [`Activity`] (under TLS, if any).
struct Watched {
    inner: TcpStream,
    activity: Arc<Activity>,
}

impl Watched {
    fn wrote<T>(&self, r: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        let a = &self.activity;
        match &r {
            Poll::Pending => {
                let now = a.now_ms();
                let _ = a.write_waiting_since_ms.compare_exchange(
                    u64::MAX,
                    now,
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                );
            }
            Poll::Ready(_) => a.write_waiting_since_ms.store(u64::MAX, Ordering::Relaxed),
        }
        r
    }
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            let a = &self.activity;
            a.last_read_ms.store(a.now_ms(), Ordering::Relaxed);
        }
        r
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.wrote(r)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.wrote(r)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let r = Pin::new(&mut self.inner).poll_flush(cx);
        self.wrote(r)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let r = Pin::new(&mut self.inner).poll_shutdown(cx);
        self.wrote(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stalled_writes_and_idle_connections() {
        let a = Activity::new();
        let (w, i) = (Duration::from_millis(50), Duration::from_millis(200));
        assert!(!a.stalled(w, i));
        a.write_waiting_since_ms
            .store(a.now_ms(), Ordering::Relaxed);
        std::thread::sleep(Duration::from_millis(80));
        assert!(a.stalled(w, i), "a write waited past the write timeout");
        a.write_waiting_since_ms.store(u64::MAX, Ordering::Relaxed);
        a.last_read_ms.store(a.now_ms(), Ordering::Relaxed);
        assert!(!a.stalled(w, i), "read just now");
        std::thread::sleep(Duration::from_millis(220));
        assert!(a.stalled(w, i), "idle past the idle timeout");
        assert!(is_resource_exhaustion(&io::Error::from_raw_os_error(
            libc::EMFILE
        )));
        assert!(!is_resource_exhaustion(&io::Error::from_raw_os_error(
            libc::ECONNABORTED
        )));
    }
}
