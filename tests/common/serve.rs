//! A running `sirqtop serve` for the root tests.

use std::io::BufReader;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_sirqtop"))
}

/// A running `sirqtop serve`, its address, and the programs it loaded.
pub struct Serve {
    pub child: Child,
    pub addr: String,
    pub programs: std::collections::BTreeSet<u32>,
    _stderr: BufReader<std::process::ChildStderr>,
}

impl Serve {
    /// Starts `sirqtop serve ARGS` and waits for its "ready ... serving http(s)://ADDR/metrics".
    pub fn start(args: &[&str]) -> Serve {
        let before = super::sirqtop_program_ids();
        let (child, addr, err) = super::spawn_until(
            bin().arg("serve").args(args).stdout(Stdio::null()),
            |line| {
                let rest = line
                    .split("serving http://")
                    .nth(1)
                    .or_else(|| line.split("serving https://").nth(1))?;
                Some(rest.trim_end_matches("/metrics").to_string())
            },
        );
        let programs = super::sirqtop_program_ids()
            .difference(&before)
            .copied()
            .collect();
        Serve {
            child,
            addr,
            programs,
            _stderr: err,
        }
    }

    /// `serve` on a free loopback port counting the lab's two namespaces, refreshed every
    /// `interval`, with `extra` arguments.
    pub fn on_lab(lab: &super::VethLab, interval: &str, extra: &[&str]) -> Serve {
        let mut args = vec![
            "--listen",
            "127.0.0.1:0",
            "--netns",
            &lab.ns_a,
            "--netns",
            &lab.ns_b,
            "--interval",
            interval,
        ];
        args.extend_from_slice(extra);
        Serve::start(&args)
    }

    /// SIGTERM; asserts exit status 0 and that every program it loaded is gone.
    pub fn stop(mut self) {
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let status = self.child.wait().unwrap();
        assert!(status.success(), "serve exited with {status}");
        let deadline = Instant::now() + Duration::from_secs(5);
        while !super::sirqtop_program_ids().is_disjoint(&self.programs) {
            assert!(Instant::now() < deadline, "programs left loaded after exit");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
