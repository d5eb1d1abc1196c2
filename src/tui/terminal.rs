//! The terminal is always given back. ratatui's own `try_init` sets it up (raw mode,
//! alternate screen) and installs a panic hook that restores it before the panic message
//! is printed (chained to the previous hook); our guard restores it on Drop (quit, error,
//! unwinding panic), once.

use std::io::{self, Stdout};
use std::sync::atomic::{AtomicBool, Ordering};

use ratatui::backend::CrosstermBackend;
use ratatui::crossterm::cursor::Show;
use ratatui::crossterm::execute;
use ratatui::Terminal;

/// The terminal is in raw mode on the alternate screen and must be restored.
static ACTIVE: AtomicBool = AtomicBool::new(false);

pub type Term = Terminal<CrosstermBackend<Stdout>>;

/// Owns the dashboard's terminal; dropping it restores the user's terminal.
pub struct TerminalGuard {
    pub terminal: Term,
}

impl TerminalGuard {
    /// Raw mode, alternate screen, hidden cursor. Undone on Drop or on any failure here.
    pub fn enter() -> io::Result<TerminalGuard> {
        ACTIVE.store(true, Ordering::SeqCst);
        let setup = || -> io::Result<Term> {
            let mut t = ratatui::try_init()?;
            t.hide_cursor()?;
            t.clear()?;
            Ok(t)
        };
        match setup() {
            Ok(terminal) => Ok(TerminalGuard { terminal }),
            Err(e) => {
                let _ = restore();
                Err(e)
            }
        }
    }
}

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        let _ = restore();
    }
}

/// Leaves raw mode and the alternate screen and shows the cursor, once; a no-op when the
/// terminal is not (or no longer) set up.
pub fn restore() -> io::Result<()> {
    if !ACTIVE.swap(false, Ordering::SeqCst) {
        return Ok(());
    }
    let screen = ratatui::try_restore();
    let cursor = execute!(io::stdout(), Show);
    screen.and(cursor)
}
