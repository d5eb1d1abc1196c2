//! What the running kernel offers, read from /sys and /proc: BTF, kprobes, and the
//! kallsyms facts that decide whether a kprobe/fentry hook can see every event.

use std::collections::HashMap;
use std::path::Path;

use super::btf::RawBtf;
use crate::model::Hook;

/// What the running kernel offers, read from /sys and /proc.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KernelFeatures {
    pub release: String,
    pub btf: bool,
    pub kprobes: bool,
    /// Kernel function name -> present, for the functions the kprobe/fentry hooks need.
    /// None when kallsyms was not read.
    pub symbols: Option<HashMap<String, SymbolInfo>>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SymbolInfo {
    /// Compiler clones (`.isra.N`, `.constprop.N`) that callers may call instead.
    pub clones: Vec<String>,
}

impl KernelFeatures {
    /// Cheap checks only; kallsyms is read by `with_symbols` when a kprobe/fentry is considered.
    pub fn detect() -> KernelFeatures {
        let release = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| s.trim().to_string())
            .unwrap_or_default();
        KernelFeatures {
            release,
            btf: Path::new("/sys/kernel/btf/vmlinux").exists(),
            // The kprobe PMU is registered only when CONFIG_KPROBES is on.
            kprobes: Path::new("/sys/bus/event_source/devices/kprobe").exists(),
            symbols: None,
        }
    }

    pub fn with_symbols(mut self) -> KernelFeatures {
        if self.symbols.is_none() {
            let text = std::fs::read_to_string("/proc/kallsyms").unwrap_or_default();
            self.symbols = Some(parse_kallsyms(&text));
        }
        self
    }

    pub fn symbol(&self, name: &str) -> Option<&SymbolInfo> {
        self.symbols.as_ref().and_then(|s| s.get(name))
    }
}

/// Picks out the hook functions (and their clones) from /proc/kallsyms text.
pub fn parse_kallsyms(text: &str) -> HashMap<String, SymbolInfo> {
    let wanted: Vec<&str> = Hook::ALL
        .iter()
        .flat_map(|h| super::functions(*h))
        .collect();
    let mut out: HashMap<String, SymbolInfo> = HashMap::new();
    for line in text.lines() {
        let mut it = line.split_whitespace();
        let (Some(_addr), Some(kind), Some(sym)) = (it.next(), it.next(), it.next()) else {
            continue;
        };
        if !matches!(kind, "t" | "T") {
            continue;
        }
        let base = sym.split('.').next().unwrap_or(sym);
        if !wanted.contains(&base) {
            continue;
        }
        let entry = out.entry(base.to_string()).or_default();
        if sym != base && (sym.contains(".isra.") || sym.contains(".constprop.")) {
            entry.clones.push(sym.to_string());
        }
    }
    out
}

/// Whether an optional function (e.g. `__netif_rx` before 5.18) can be probed.
pub fn has_function(k: &KernelFeatures, name: &str) -> bool {
    match &k.symbols {
        Some(s) => s.contains_key(name),
        None => true,
    }
}

/// How many CPUs are online (`/sys/devices/system/cpu/online`); per-CPU maps are laid
/// out by *possible* CPUs, which can be many more.
pub fn online_cpus() -> usize {
    std::fs::read_to_string("/sys/devices/system/cpu/online")
        .ok()
        .and_then(|s| count_cpu_list(&s))
        .or_else(|| std::thread::available_parallelism().ok().map(|n| n.get()))
        .unwrap_or(1)
}

/// Counts the CPUs in a kernel CPU list such as `0-3,6,8-9`; None if malformed.
pub fn count_cpu_list(s: &str) -> Option<usize> {
    let mut n = 0usize;
    for (a, b) in cpu_ranges(s)? {
        n = n.checked_add(b.checked_sub(a)?.checked_add(1)?)?;
    }
    (n > 0).then_some(n)
}

/// The CPUs of a kernel CPU list, in order; None if malformed.
pub fn cpu_list(s: &str) -> Option<Vec<u32>> {
    let mut out = Vec::new();
    for (a, b) in cpu_ranges(s)? {
        if b < a || b - a > 1 << 16 {
            return None;
        }
        out.extend((a..=b).map(|c| c as u32));
    }
    Some(out)
}

/// The online CPUs, in order (empty if the list cannot be read).
pub fn online_cpu_list() -> Vec<u32> {
    std::fs::read_to_string("/sys/devices/system/cpu/online")
        .ok()
        .and_then(|s| cpu_list(&s))
        .unwrap_or_default()
}

fn cpu_ranges(s: &str) -> Option<Vec<(usize, usize)>> {
    s.trim()
        .split(',')
        .filter(|p| !p.is_empty())
        .map(|part| match part.split_once('-') {
            Some((a, b)) => Some((a.parse::<usize>().ok()?, b.parse::<usize>().ok()?)),
            None => part.parse::<usize>().ok().map(|a| (a, a)),
        })
        .collect()
}

/// The running kernel's names for `enum skb_drop_reason` values (from its BTF), without
/// the `SKB_DROP_REASON_` prefix. Empty where the kernel has no drop reasons (< 5.17).
pub fn drop_reason_names(btf: &RawBtf) -> HashMap<u32, String> {
    btf.enum_members("skb_drop_reason")
        .unwrap_or_default()
        .into_iter()
        .filter_map(|(name, value)| Some((u32::try_from(value).ok()?, drop_reason_label(&name))))
        .collect()
}

/// `SKB_DROP_REASON_PKT_TOO_BIG` -> `PKT_TOO_BIG`.
pub fn drop_reason_label(kernel_name: &str) -> String {
    kernel_name
        .strip_prefix("SKB_DROP_REASON_")
        .unwrap_or(kernel_name)
        .to_string()
}

/// Whether the kernel lets a tracing program attach at `func`'s return: a two-instruction
/// fexit program is loaded and closed. Some kernels refuse fentry/fexit outright (EPERM:
/// lockdown, an LSM) though they have BTF; finding that out this way costs a BTF look-up,
/// where a failed load of every program (and a kallsyms read) costs hundreds of ms.
pub fn fexit_probe(btf: &RawBtf, func: &str) -> Result<(), String> {
    use libbpf_rs::libbpf_sys as sys;
    let Some(id) = btf.func_id(func) else {
        return Err(format!("{func} is not in the kernel's BTF"));
    };
    let insns = [
        // r0 = 0; exit
        sys::bpf_insn {
            code: 0xb7,
            ..Default::default()
        },
        sys::bpf_insn {
            code: 0x95,
            ..Default::default()
        },
    ];
    let mut opts = sys::bpf_prog_load_opts {
        sz: std::mem::size_of::<sys::bpf_prog_load_opts>() as _,
        expected_attach_type: sys::BPF_TRACE_FEXIT,
        attach_btf_id: id,
        ..Default::default()
    };
    let license = c"GPL";
    let prog = c"sirqtop_probe";
    // SAFETY: every pointer is valid for the call: the strings and `insns` outlive it,
    // `opts` is a properly sized, zero-initialised options struct.
    let fd = unsafe {
        sys::bpf_prog_load(
            sys::BPF_PROG_TYPE_TRACING,
            prog.as_ptr(),
            license.as_ptr(),
            insns.as_ptr(),
            insns.len() as _,
            &mut opts,
        )
    };
    if fd < 0 {
        let e = std::io::Error::from_raw_os_error(-fd);
        return Err(match -fd {
            libc::EPERM => "the kernel refuses fentry programs (EPERM)".to_string(),
            _ => format!("the kernel refused a fexit program: {e}"),
        });
    }
    // SAFETY: `fd` is the program descriptor just returned to us, closed once.
    unsafe { libc::close(fd) };
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drop_reasons_are_named_from_btf() {
        assert_eq!(
            drop_reason_label("SKB_DROP_REASON_PKT_TOO_BIG"),
            "PKT_TOO_BIG"
        );
        assert_eq!(drop_reason_label("OTHER"), "OTHER");
        // Every kernel with drop reasons (5.17+) has NOT_SPECIFIED.
        let Ok(btf) = RawBtf::vmlinux() else { return };
        let names = drop_reason_names(&btf);
        if !names.is_empty() {
            assert!(names.values().any(|n| n == "NOT_SPECIFIED"), "{names:?}");
        }
        // The same names libbpf reads.
        use libbpf_rs::btf::{types::Enum, Btf};
        let libbpf: HashMap<u32, String> = Btf::from_vmlinux()
            .ok()
            .and_then(|b| {
                let e = b.type_by_name::<Enum>("skb_drop_reason")?;
                Some(
                    e.iter()
                        .filter_map(|m| {
                            let v = u32::try_from(m.value).ok()?;
                            Some((v, drop_reason_label(&m.name?.to_string_lossy())))
                        })
                        .collect(),
                )
            })
            .unwrap_or_default();
        assert_eq!(names, libbpf);
    }

    #[test]
    fn cpu_lists() {
        assert_eq!(count_cpu_list("0-1\n"), Some(2));
        assert_eq!(count_cpu_list("0"), Some(1));
        assert_eq!(count_cpu_list("0-3,6,8-9"), Some(7));
        assert_eq!(count_cpu_list("3-1"), None);
        assert_eq!(count_cpu_list("x"), None);
        assert_eq!(count_cpu_list(""), None);
        assert_eq!(cpu_list("0-2,5\n"), Some(vec![0, 1, 2, 5]));
        assert_eq!(cpu_list("3-1"), None);
    }

    #[test]
    fn kallsyms_picks_hook_functions_and_clones() {
        let syms = parse_kallsyms(
            "ffffffff81000000 T netif_rx\nffffffff81000010 T unrelated\n\
             ffffffff81000200 t __raise_softirq_irqoff.isra.0\nffffffff81000300 d veth_xmit\n",
        );
        assert!(syms.contains_key("netif_rx"));
        assert!(!syms.contains_key("unrelated"));
        assert_eq!(
            syms["__raise_softirq_irqoff"].clones,
            vec!["__raise_softirq_irqoff.isra.0".to_string()]
        );
        // Data symbols are not functions.
        assert!(!syms.contains_key("veth_xmit"));
    }
}
