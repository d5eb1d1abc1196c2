//! The live dashboard (`sudo sirqtop`): the same collector and snapshots as `--json`, drawn
//! with ratatui.
//!
//! Two threads. The collector thread creates the [`Collector`] (the BPF skeleton is not
//! `Send`, so it lives and dies there), drains the ring buffer every ~100 ms and sends a
//! cumulative [`Snapshot`] every refresh interval on a bounded channel with `try_send`: it
//! never waits for the UI, a slow UI just skips snapshots (rates stay right, they are
//! computed over the snapshots' own clock). The UI thread owns the terminal, turns snapshots
//! into [`app::App`] state, draws it and handles keys.
//!
//! Every exit path restores the terminal and detaches the BPF programs: quit keys, SIGTERM /
//! SIGINT / SIGHUP (a flag the loops check), errors, and panics in either thread (the
//! terminal guard and the collector handle both act on Drop; a panic hook restores the
//! terminal before the message is printed).

pub mod app;
pub mod demo;
pub mod event;
pub mod format;
pub mod terminal;
pub mod ui;
pub mod views;

use std::io::{self, IsTerminal};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{
    self, Receiver, RecvTimeoutError, Sender, SyncSender, TryRecvError, TrySendError,
};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{self as ct_event, Event, KeyEventKind};
use ratatui::Terminal;

use crate::collector::{Collector, Config};
use crate::model::{CaptureMeta, Snapshot};

use app::{App, Effect};
use terminal::TerminalGuard;

/// How often the collector thread drains the ring buffer.
pub const DRAIN_EVERY: Duration = Duration::from_millis(100);
/// Shortest and longest refresh interval.
pub const MIN_INTERVAL: Duration = Duration::from_millis(250);
pub const MAX_INTERVAL: Duration = Duration::from_secs(10);
/// Snapshots that may wait for the UI before newer ones are dropped.
const CHANNEL_DEPTH: usize = 4;

/// How the dashboard runs.
#[derive(Debug, Clone)]
pub struct TuiOptions {
    /// Refresh interval (clamped to 250 ms .. 10 s).
    pub interval: Duration,
}

/// Why the dashboard could not run or stopped; every message is one line.
#[derive(Debug, thiserror::Error)]
pub enum TuiError {
    #[error("stdout is not a terminal: the dashboard needs one; use --json for a capture")]
    NotATerminal,
    #[error(transparent)]
    Collector(#[from] crate::Error),
    #[error("the collector thread stopped unexpectedly (see the message above)")]
    CollectorStopped,
    #[error("cannot start the collector thread: {0}")]
    Spawn(io::Error),
    #[error("terminal: {0}")]
    Terminal(#[from] io::Error),
}

/// Messages from the collector thread.
enum FromCollector {
    Started(Box<CaptureMeta>),
    Snapshot(Box<Snapshot>),
    Failed(crate::Error),
}

/// Messages to the collector thread.
enum ToCollector {
    Interval(Duration),
}

/// Runs the dashboard until the user quits or a signal asks to stop.
pub fn run(mut cfg: Config, opts: TuiOptions) -> Result<(), TuiError> {
    // The dashboard drops a gone row after GONE_KEEP_NS: the collector may forget it then.
    cfg.forget_gone_after = Some(Duration::from_nanos(app::GONE_KEEP_NS));
    if !io::stdout().is_terminal() {
        return Err(TuiError::NotATerminal);
    }
    let interval = opts.interval.clamp(MIN_INTERVAL, MAX_INTERVAL);
    let stop = Arc::new(AtomicBool::new(false));
    register_signals(&stop)?;

    // Declared before the terminal guard: dropped after it, so the terminal is restored
    // first and the collector (BPF links) is joined and detached on every path.
    let mut collector = CollectorThread::spawn(cfg, interval, Arc::clone(&stop))?;
    let Some(meta) = collector.wait_started(&stop)? else {
        return Ok(()); // asked to stop while attaching
    };
    let mut app = App::new(meta, interval);
    let mut guard = TerminalGuard::enter()?;
    let result = event_loop(&mut guard, &mut app, &mut collector, &stop);
    drop(guard);
    drop(collector);
    result
}

/// SIGTERM, SIGINT and SIGHUP set `stop`; a second one while stopping exits at once.
fn register_signals(stop: &Arc<AtomicBool>) -> io::Result<()> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    for sig in [SIGTERM, SIGINT, SIGHUP] {
        signal_hook::flag::register_conditional_shutdown(sig, 1, Arc::clone(stop))?;
        signal_hook::flag::register(sig, Arc::clone(stop))?;
    }
    Ok(())
}

fn event_loop(
    guard: &mut TerminalGuard,
    app: &mut App,
    collector: &mut CollectorThread,
    stop: &AtomicBool,
) -> Result<(), TuiError> {
    let mut dirty = true;
    while !stop.load(Ordering::Relaxed) {
        loop {
            match collector.try_recv() {
                Ok(FromCollector::Snapshot(s)) => {
                    app.update(*s);
                    dirty = true;
                }
                Ok(FromCollector::Failed(e)) => return Err(TuiError::Collector(e)),
                Ok(FromCollector::Started(_)) => {}
                Err(TryRecvError::Empty) => break,
                // The collector also watches `stop`: a signal may end it first.
                Err(TryRecvError::Disconnected) if stop.load(Ordering::Relaxed) => return Ok(()),
                Err(TryRecvError::Disconnected) => return Err(TuiError::CollectorStopped),
            }
        }
        if dirty {
            let size = guard.terminal.size()?;
            app.page = ui::page_rows(size.height);
            guard.terminal.draw(|f| ui::render(app, f))?;
            dirty = false;
        }
        let ready = match ct_event::poll(Duration::from_millis(50)) {
            Ok(r) => r,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.into()),
        };
        if !ready {
            continue;
        }
        let ev = match ct_event::read() {
            Ok(ev) => ev,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.into()),
        };
        match ev {
            Event::Key(k) if k.kind != KeyEventKind::Release => {
                match app.apply(event::action_for(app, k)) {
                    Effect::Quit => return Ok(()),
                    Effect::SetInterval(d) => collector.set_interval(d),
                    Effect::None => {}
                }
                dirty = true;
            }
            Event::Resize(..) => dirty = true,
            _ => {}
        }
    }
    Ok(())
}

/// The collector thread, joined on Drop (after asking it to stop) so that the BPF links are
/// detached before `run` returns, whatever way it returns.
struct CollectorThread {
    rx: Option<Receiver<FromCollector>>,
    ctl: Sender<ToCollector>,
    stop: Arc<AtomicBool>,
    join: Option<JoinHandle<()>>,
}

impl CollectorThread {
    fn spawn(cfg: Config, interval: Duration, stop: Arc<AtomicBool>) -> Result<Self, TuiError> {
        let (tx, rx) = mpsc::sync_channel(CHANNEL_DEPTH);
        let (ctl, ctl_rx) = mpsc::channel();
        let thread_stop = Arc::clone(&stop);
        let join = std::thread::Builder::new()
            .name("sirqtop-collector".into())
            .spawn(move || collect(cfg, interval, &thread_stop, &tx, &ctl_rx))
            .map_err(TuiError::Spawn)?;
        Ok(CollectorThread {
            rx: Some(rx),
            ctl,
            stop,
            join: Some(join),
        })
    }

    /// Waits until every probe is attached. None when `stop` was set meanwhile.
    fn wait_started(&mut self, stop: &AtomicBool) -> Result<Option<CaptureMeta>, TuiError> {
        let Some(rx) = &self.rx else {
            return Err(TuiError::CollectorStopped);
        };
        while !stop.load(Ordering::Relaxed) {
            match rx.recv_timeout(DRAIN_EVERY) {
                Ok(FromCollector::Started(m)) => return Ok(Some(*m)),
                Ok(FromCollector::Failed(e)) => return Err(TuiError::Collector(e)),
                Ok(FromCollector::Snapshot(_)) => {}
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) if stop.load(Ordering::Relaxed) => {
                    return Ok(None)
                }
                Err(RecvTimeoutError::Disconnected) => return Err(TuiError::CollectorStopped),
            }
        }
        Ok(None)
    }

    fn try_recv(&mut self) -> Result<FromCollector, TryRecvError> {
        match &self.rx {
            Some(rx) => rx.try_recv(),
            None => Err(TryRecvError::Disconnected),
        }
    }

    fn set_interval(&self, d: Duration) {
        // If the thread is gone, the next try_recv reports it.
        let _ = self.ctl.send(ToCollector::Interval(d));
    }
}

impl Drop for CollectorThread {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Dropping the receiver first: a blocked send in the thread returns at once.
        self.rx = None;
        if let Some(j) = self.join.take() {
            // A panic there was already reported by the panic hook; the Collector inside
            // was dropped while unwinding.
            let _ = j.join();
        }
    }
}

/// The collector thread's body: attach, then drain and snapshot until told to stop. The
/// Collector is dropped (links detached) when this returns or unwinds.
fn collect(
    cfg: Config,
    mut interval: Duration,
    stop: &AtomicBool,
    tx: &SyncSender<FromCollector>,
    ctl: &Receiver<ToCollector>,
) {
    let mut c = match Collector::start(&cfg) {
        Ok(c) => c,
        Err(e) => {
            let _ = tx.send(FromCollector::Failed(e));
            return;
        }
    };
    if tx
        .send(FromCollector::Started(Box::new(c.meta().clone())))
        .is_err()
    {
        return;
    }
    let mut next = Instant::now() + interval;
    while !stop.load(Ordering::Relaxed) {
        while let Ok(ToCollector::Interval(d)) = ctl.try_recv() {
            interval = d;
            next = Instant::now() + d;
        }
        let now = Instant::now();
        if now >= next {
            let msg = match c.snapshot() {
                Ok(s) => FromCollector::Snapshot(Box::new(s)),
                Err(e) => {
                    let _ = tx.send(FromCollector::Failed(e));
                    return;
                }
            };
            match tx.try_send(msg) {
                Ok(()) | Err(TrySendError::Full(_)) => {}
                Err(TrySendError::Disconnected(_)) => return,
            }
            next += interval;
            if next <= now {
                next = now + interval;
            }
        } else if let Err(e) = c.poll() {
            let _ = tx.send(FromCollector::Failed(e));
            return;
        }
        let wait = next
            .saturating_duration_since(Instant::now())
            .min(DRAIN_EVERY);
        std::thread::sleep(wait);
    }
}

/// Renders `app` into a `width` x `height` text screen (no colours), one line per row with
/// trailing spaces trimmed. Used for the README capture and by tests.
pub fn render_to_text(app: &App, width: u16, height: u16) -> String {
    let backend = TestBackend::new(width, height);
    let mut term = match Terminal::new(backend) {
        Ok(t) => t,
        Err(e) => match e {},
    };
    if let Err(e) = term.draw(|f| ui::render(app, f)) {
        match e {}
    }
    buffer_text(term.backend().buffer())
}

/// The symbols of a buffer as lines of text.
pub fn buffer_text(buf: &ratatui::buffer::Buffer) -> String {
    let area = buf.area;
    let mut out = String::new();
    for y in area.top()..area.bottom() {
        let mut line = String::new();
        let mut skip = 0usize;
        for x in area.left()..area.right() {
            if skip > 0 {
                skip -= 1;
                continue;
            }
            let sym = buf[(x, y)].symbol();
            line.push_str(sym);
            // A wide character occupies the next cell(s) too; they hold "" or " ".
            skip = unicode_width(sym).saturating_sub(1);
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// Display width of a cell's symbol (wide CJK/emoji = 2); the dashboard only uses narrow
/// symbols, this keeps captures aligned if a name contains wide ones.
fn unicode_width(s: &str) -> usize {
    use ratatui::text::Span;
    Span::raw(s).width()
}
