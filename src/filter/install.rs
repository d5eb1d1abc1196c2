//! Installing a filter into the prepared BPF object (`bpf_object__prepare`: relocations
//! done, functions appended to the programs that call them): every copy of the placeholder
//! gets its translated body, then the object loads as usual.

use libbpf_rs::libbpf_sys;
use libbpf_rs::{AsRawLibbpf, OpenObject};

use super::{splice, Filter, Insn, MAGIC};

/// Replaces the placeholders of every program of the prepared `obj` that will load; the
/// error is one line.
pub fn install(obj: &mut OpenObject, filter: &Filter) -> Result<(), String> {
    let body = filter.placeholder_body().map_err(|e| e.to_string())?;
    for prog in obj.progs_mut() {
        if !prog.autoload() {
            continue;
        }
        let insns: Vec<Insn> = prog
            .insns()
            .iter()
            .map(|i| Insn {
                code: i.code,
                dst: i.dst_reg(),
                src: i.src_reg(),
                off: i.off,
                imm: i.imm,
            })
            .collect();
        let spliced = splice(&insns, MAGIC, &body)
            .map_err(|e| format!("{}: {e}", prog.name().to_string_lossy()))?;
        let Some(insns) = spliced else {
            continue;
        };
        let mut raw: Vec<libbpf_sys::bpf_insn> = insns
            .iter()
            .map(|i| {
                let mut r = libbpf_sys::bpf_insn {
                    code: i.code,
                    off: i.off,
                    imm: i.imm,
                    ..Default::default()
                };
                r.set_dst_reg(i.dst);
                r.set_src_reg(i.src);
                r
            })
            .collect();
        // SAFETY: the program belongs to the prepared, not yet loaded object; libbpf
        // copies the instructions (`raw` may go after the call).
        let rc = unsafe {
            libbpf_sys::bpf_program__set_insns(
                prog.as_libbpf_object().as_ptr(),
                raw.as_mut_ptr(),
                raw.len() as libbpf_sys::size_t,
            )
        };
        if rc != 0 {
            return Err(format!(
                "placing the filter into {} failed: {}",
                prog.name().to_string_lossy(),
                std::io::Error::from_raw_os_error(-rc)
            ));
        }
    }
    Ok(())
}
