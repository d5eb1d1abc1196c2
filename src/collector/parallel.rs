//! The verifier is much of start-up (the receive program alone ≈ 10 ms of it) and
//! libbpf loads programs one after another on one thread. After libbpf has prepared the
//! object (maps made, instructions relocated), the largest tp_btf program is loaded on a
//! second thread, with the same attributes libbpf would give it, while libbpf loads the
//! rest; it is attached by its own link.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::thread::JoinHandle;

use libbpf_rs::libbpf_sys as sys;
use libbpf_rs::{AsRawLibbpf, OpenObject};

use crate::probe::btf::RawBtf;
use crate::probe::{Mechanism, Program};

/// The program being verified on the other thread.
pub(super) struct Offloaded {
    pub program: &'static Program,
    expected_attach_type: sys::bpf_attach_type,
    load: JoinHandle<Result<OwnedFd, String>>,
}

/// A program loaded and attached outside libbpf: the link and the program's fd.
pub(super) struct OwnLink {
    pub prog: OwnedFd,
    _link: OwnedFd,
}

/// What a load of one program needs, copied out of the prepared object.
struct LoadArgs {
    name: std::ffi::CString,
    prog_type: sys::bpf_prog_type,
    expected_attach_type: sys::bpf_attach_type,
    attach_btf_id: u32,
    flags: u32,
    insns: Vec<sys::bpf_insn>,
    btf: Option<OwnedFd>,
    func_info: Vec<u8>,
    func_info_cnt: u32,
    line_info: Vec<u8>,
    line_info_cnt: u32,
}

/// Prepares `obj` (maps made, instructions relocated); libbpf's load goes on from there.
/// The error is libbpf's (its log names the program).
pub(super) fn prepare(obj: &mut OpenObject) -> Result<(), libbpf_rs::Error> {
    // SAFETY: the open object, not yet loaded; prepare runs once (load skips it).
    let err = unsafe { sys::bpf_object__prepare(obj.as_libbpf_object().as_ptr()) };
    if err != 0 {
        return Err(libbpf_rs::Error::from_raw_os_error(-err));
    }
    Ok(())
}

/// Moves the largest wanted tp_btf program of the prepared `obj` to a thread of its own
/// (None: no tp_btf program, or its copy failed: libbpf loads it).
pub(super) fn offload(
    obj: &mut OpenObject,
    wanted: &[&'static Program],
    btf: &RawBtf,
) -> Option<Offloaded> {
    let raw = obj.as_libbpf_object().as_ptr();
    let (program, prog) = obj
        .progs_mut()
        .filter_map(|p| {
            let w = wanted
                .iter()
                .find(|w| w.mechanism == Mechanism::TpBtf && p.name() == w.name)?;
            Some((*w, p.insn_cnt(), p.as_libbpf_object().as_ptr()))
        })
        .max_by_key(|(_, n, _)| *n)
        .map(|(w, _, p)| (w, p))?;
    let attach_btf_id = program
        .target
        .split(':')
        .nth(1)
        .and_then(|tp| btf.typedef_id(&format!("btf_trace_{tp}")))?;
    // SAFETY: `prog` belongs to `raw`, which is prepared: its instructions are relocated
    // and stay valid (and unchanged) until the object is loaded or closed; everything is
    // copied before this returns.
    let args = (unsafe { load_args(raw, prog, attach_btf_id) })?;
    // SAFETY: as above; the object is prepared, not loaded, so autoload can change.
    if unsafe { sys::bpf_program__set_autoload(prog, false) } != 0 {
        return None;
    }
    let expected_attach_type = args.expected_attach_type;
    let load = std::thread::Builder::new()
        .name("sirqtop-verify".into())
        .spawn(move || load_program(&args));
    let Ok(load) = load else {
        // No thread: libbpf loads it after all.
        // SAFETY: as above.
        unsafe { sys::bpf_program__set_autoload(prog, true) };
        return None;
    };
    Some(Offloaded {
        program,
        expected_attach_type,
        load,
    })
}

/// Copies what libbpf's `bpf_object_load_prog` passes to the kernel for `prog`.
///
/// # Safety
/// `obj` is a prepared, not yet loaded object and `prog` one of its programs.
unsafe fn load_args(
    obj: *mut sys::bpf_object,
    prog: *mut sys::bpf_program,
    attach_btf_id: u32,
) -> Option<LoadArgs> {
    // SAFETY (whole block): the caller's contract; every pointer read is checked for null
    // and read within the lengths libbpf reports for it.
    unsafe {
        let insns = sys::bpf_program__insns(prog);
        let cnt = sys::bpf_program__insn_cnt(prog) as usize;
        if insns.is_null() || cnt == 0 {
            return None;
        }
        let name = std::ffi::CStr::from_ptr(sys::bpf_program__name(prog)).to_owned();
        let obj_btf = sys::bpf_object__btf(obj);
        let btf_fd = if obj_btf.is_null() {
            -1
        } else {
            sys::btf__fd(obj_btf)
        };
        // A copy of the descriptor: the thread may outlive a failed load's object.
        let btf = (btf_fd >= 0)
            .then(|| libc::fcntl(btf_fd, libc::F_DUPFD_CLOEXEC, 0))
            .filter(|fd| *fd >= 0)
            .map(|fd| OwnedFd::from_raw_fd(fd));
        let copy = |p: *const u8, n: usize| {
            if p.is_null() || n == 0 {
                Vec::new()
            } else {
                std::slice::from_raw_parts(p, n).to_vec()
            }
        };
        let fi_cnt = sys::bpf_program__func_info_cnt(prog);
        let li_cnt = sys::bpf_program__line_info_cnt(prog);
        let fi = sys::bpf_program__func_info(prog) as *const u8;
        let li = sys::bpf_program__line_info(prog) as *const u8;
        Some(LoadArgs {
            name,
            prog_type: sys::bpf_program__type(prog),
            expected_attach_type: sys::bpf_program__expected_attach_type(prog),
            attach_btf_id,
            flags: sys::bpf_program__flags(prog),
            insns: std::slice::from_raw_parts(insns, cnt).to_vec(),
            func_info: copy(
                fi,
                fi_cnt as usize * std::mem::size_of::<sys::bpf_func_info>(),
            ),
            func_info_cnt: if btf.is_some() { fi_cnt } else { 0 },
            line_info: copy(
                li,
                li_cnt as usize * std::mem::size_of::<sys::bpf_line_info>(),
            ),
            line_info_cnt: if btf.is_some() { li_cnt } else { 0 },
            btf,
        })
    }
}

/// Loads the program; on failure the verifier's last words, as libbpf would log them.
fn load_program(a: &LoadArgs) -> Result<OwnedFd, String> {
    let mut fd = try_load(a, None);
    let mut log = Vec::new();
    if fd < 0 && -fd != libc::EPERM {
        log = vec![0u8; 1 << 20];
        // Again with the verifier's log, for the reason.
        fd = try_load(a, Some(&mut log));
    }
    if fd >= 0 {
        // SAFETY: a new descriptor the kernel just returned, owned by nobody else.
        return Ok(unsafe { OwnedFd::from_raw_fd(fd) });
    }
    let text =
        String::from_utf8_lossy(&log[..log.iter().position(|b| *b == 0).unwrap_or(0)]).into_owned();
    let last = text
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("");
    Err(match -fd {
        libc::EPERM => "the kernel refused the program (EPERM)".to_string(),
        e => format!(
            "load failed: {}: {last}",
            std::io::Error::from_raw_os_error(e)
        ),
    })
}

/// One `BPF_PROG_LOAD`; the fd or -errno.
fn try_load(a: &LoadArgs, log: Option<&mut Vec<u8>>) -> i32 {
    let (log_level, log_size, log_buf) = match log {
        Some(l) => (1, l.len() as u32, l.as_mut_ptr().cast()),
        None => (0, 0, std::ptr::null_mut()),
    };
    let mut opts = sys::bpf_prog_load_opts {
        sz: std::mem::size_of::<sys::bpf_prog_load_opts>() as _,
        expected_attach_type: a.expected_attach_type,
        attach_btf_id: a.attach_btf_id,
        prog_flags: a.flags,
        prog_btf_fd: a.btf.as_ref().map_or(0, |f| f.as_raw_fd() as u32),
        func_info: a.func_info.as_ptr().cast(),
        func_info_cnt: a.func_info_cnt,
        func_info_rec_size: std::mem::size_of::<sys::bpf_func_info>() as u32,
        line_info: a.line_info.as_ptr().cast(),
        line_info_cnt: a.line_info_cnt,
        line_info_rec_size: std::mem::size_of::<sys::bpf_line_info>() as u32,
        log_level,
        log_size,
        log_buf,
        ..Default::default()
    };
    // SAFETY: every pointer in `opts` and the arguments is valid for the call (owned by
    // `a` or the log buffer, which outlive it) and sized as stated.
    unsafe {
        sys::bpf_prog_load(
            a.prog_type,
            a.name.as_ptr(),
            c"GPL".as_ptr(),
            a.insns.as_ptr(),
            a.insns.len() as _,
            &mut opts,
        )
    }
}

impl Offloaded {
    /// Waits for the load and attaches the program.
    pub fn attach(self) -> Result<OwnLink, String> {
        let prog = self
            .load
            .join()
            .map_err(|_| "the loading thread panicked".to_string())??;
        // SAFETY: `prog` is a loaded tracing program's descriptor; a null options pointer
        // is allowed.
        let link = unsafe {
            sys::bpf_link_create(
                prog.as_raw_fd(),
                0,
                self.expected_attach_type,
                std::ptr::null(),
            )
        };
        if link < 0 {
            return Err(format!(
                "attach failed: {}",
                std::io::Error::from_raw_os_error(-link)
            ));
        }
        Ok(OwnLink {
            prog,
            // SAFETY: a new descriptor the kernel just returned, owned by nobody else.
            _link: unsafe { OwnedFd::from_raw_fd(link) },
        })
    }
}
