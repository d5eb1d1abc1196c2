//! A read-only walk over the kernel's BTF (/sys/kernel/btf/vmlinux) for the two facts
//! start-up needs before and besides loading: a function's type id (the fexit probe) and
//! an enum's members (drop reason names). libbpf parses and indexes all of it (~5 ms per
//! parse here, and start-up did it three times); one read and a linear walk of the type
//! headers costs about a millisecond. Kernels since 6.15 let the file be mapped (as libbpf
//! does); reading it instead goes through sysfs a page per call.

use std::path::Path;

const MAGIC: u16 = 0xeb9f;
const KIND_INT: u32 = 1;
const KIND_ARRAY: u32 = 3;
const KIND_STRUCT: u32 = 4;
const KIND_UNION: u32 = 5;
const KIND_ENUM: u32 = 6;
const KIND_TYPEDEF: u32 = 8;
const KIND_FUNC: u32 = 12;
const KIND_FUNC_PROTO: u32 = 13;
const KIND_VAR: u32 = 14;
const KIND_DATASEC: u32 = 15;
const KIND_DECL_TAG: u32 = 17;
const KIND_ENUM64: u32 = 19;

/// Kernel facts the load adapts to, from its BTF.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LoadFacts {
    /// The `bpf_rdonly_cast` kfunc (6.2+): tp_btf programs cast their trusted pointers to
    /// untrusted ones, which the verifier checks without searching the BTF by name.
    pub untrusted_cast: bool,
    /// BPF's any-context allocator (6.1+): tracing programs may use hash maps that
    /// allocate elements when inserted instead of all of them at creation.
    pub runtime_alloc: bool,
}

/// One type's header: its id, kind, name offset, and where its member records start.
#[derive(Debug, Clone, Copy)]
struct TypeRef {
    id: u32,
    kind: u32,
    name_off: u32,
    vlen: u32,
    signed: bool,
    /// Offset of the records after the 12-byte header, within the type section.
    extra: usize,
}

/// The bytes of a BTF file: mapped read-only where the kernel allows, else read.
enum Bytes {
    Owned(Vec<u8>),
    Mapped(*const u8, usize),
}

impl Bytes {
    fn map(path: &Path) -> Option<Bytes> {
        use std::os::fd::AsRawFd;
        let f = std::fs::File::open(path).ok()?;
        let len = usize::try_from(f.metadata().ok()?.len()).ok()?;
        if len == 0 {
            return None;
        }
        // SAFETY: a fresh read-only private mapping of an open file; the result is checked
        // before use, and the mapping outlives the descriptor by design of mmap.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ,
                libc::MAP_PRIVATE,
                f.as_raw_fd(),
                0,
            )
        };
        (p != libc::MAP_FAILED).then_some(Bytes::Mapped(p as *const u8, len))
    }
}

impl std::ops::Deref for Bytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Bytes::Owned(v) => v,
            // SAFETY: the mapping is `len` readable bytes and lives until Drop; nothing
            // writes it (read-only, private).
            Bytes::Mapped(p, len) => unsafe { std::slice::from_raw_parts(*p, *len) },
        }
    }
}

impl Drop for Bytes {
    fn drop(&mut self) {
        if let Bytes::Mapped(p, len) = *self {
            // SAFETY: unmaps exactly the mapping made in `map`, once; no slice of it
            // outlives `self`.
            unsafe { libc::munmap(p as *mut libc::c_void, len) };
        }
    }
}

/// The raw BTF of one object, with its type and string sections located.
pub struct RawBtf {
    data: Bytes,
    types: std::ops::Range<usize>,
    strs: std::ops::Range<usize>,
}

impl RawBtf {
    /// The running kernel's BTF.
    pub fn vmlinux() -> Result<RawBtf, String> {
        Self::read(Path::new("/sys/kernel/btf/vmlinux"))
    }

    pub fn read(path: &Path) -> Result<RawBtf, String> {
        let data = match Bytes::map(path) {
            Some(m) => m,
            None => {
                Bytes::Owned(std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?)
            }
        };
        Self::parse_bytes(data)
    }

    /// Checks the header and section bounds (native byte order, as the kernel writes it).
    pub fn parse(data: Vec<u8>) -> Result<RawBtf, String> {
        Self::parse_bytes(Bytes::Owned(data))
    }

    fn parse_bytes(data: Bytes) -> Result<RawBtf, String> {
        let u32_at = |o: usize| {
            data.get(o..o + 4)
                .map(|b| u32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
        };
        let magic = data.get(0..2).map(|b| u16::from_ne_bytes([b[0], b[1]]));
        if magic != Some(MAGIC) {
            return Err("not BTF (bad magic)".into());
        }
        let field = |o| {
            u32_at(o)
                .map(|v| v as usize)
                .ok_or("BTF header is cut short")
        };
        let hdr_len = field(4)?;
        let (type_off, type_len) = (field(8)?, field(12)?);
        let (str_off, str_len) = (field(16)?, field(20)?);
        let section = |off: usize, len: usize| {
            let start = hdr_len.checked_add(off)?;
            let end = start.checked_add(len)?;
            (end <= data.len()).then_some(start..end)
        };
        let types = section(type_off, type_len).ok_or("BTF type section out of bounds")?;
        let strs = section(str_off, str_len).ok_or("BTF string section out of bounds")?;
        Ok(RawBtf { data, types, strs })
    }

    fn u32_at(&self, o: usize) -> Option<u32> {
        let b = self.data.get(o..o + 4)?;
        Some(u32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// The NUL-terminated string at `off` in the string section.
    fn str_at(&self, off: u32) -> Option<&[u8]> {
        let s = self
            .data
            .get(self.strs.start + off as usize..self.strs.end)?;
        Some(&s[..s.iter().position(|b| *b == 0)?])
    }

    /// Every type header in id order; stops at the first malformed one.
    fn types(&self) -> impl Iterator<Item = TypeRef> + '_ {
        let mut at = self.types.start;
        let mut id = 0u32;
        std::iter::from_fn(move || {
            let (name_off, info) = (self.u32_at(at)?, self.u32_at(at + 4)?);
            if at + 12 > self.types.end {
                return None;
            }
            let kind = (info >> 24) & 0x1f;
            let vlen = info & 0xffff;
            let record = match kind {
                KIND_INT | KIND_VAR | KIND_DECL_TAG => 4,
                KIND_ARRAY => 12,
                KIND_STRUCT | KIND_UNION | KIND_DATASEC | KIND_ENUM64 => 12 * vlen as usize,
                KIND_ENUM | KIND_FUNC_PROTO => 8 * vlen as usize,
                _ => 0,
            };
            id += 1;
            let t = TypeRef {
                id,
                kind,
                name_off,
                vlen,
                signed: info & (1 << 31) != 0,
                extra: at + 12,
            };
            at += 12 + record;
            Some(t)
        })
    }

    fn named(&self, kinds: &[u32], name: &str) -> Option<TypeRef> {
        self.types()
            .find(|t| kinds.contains(&t.kind) && self.str_at(t.name_off) == Some(name.as_bytes()))
    }

    /// The type id of the function `name` (what a fentry/fexit program attaches to).
    pub fn func_id(&self, name: &str) -> Option<u32> {
        self.named(&[KIND_FUNC], name).map(|t| t.id)
    }

    /// The type id of the typedef `name` (`btf_trace_<tracepoint>` is what a tp_btf
    /// program attaches to).
    pub fn typedef_id(&self, name: &str) -> Option<u32> {
        self.named(&[KIND_TYPEDEF], name).map(|t| t.id)
    }

    /// What the load adapts to, in one walk: see [`LoadFacts`].
    pub fn load_facts(&self) -> LoadFacts {
        let mut facts = LoadFacts::default();
        for t in self.types() {
            match (t.kind, self.str_at(t.name_off)) {
                (KIND_FUNC, Some(b"bpf_rdonly_cast")) => facts.untrusted_cast = true,
                (KIND_STRUCT, Some(b"bpf_mem_alloc")) => facts.runtime_alloc = true,
                _ => continue,
            }
            if facts.untrusted_cast && facts.runtime_alloc {
                break;
            }
        }
        facts
    }

    /// The members of enum `name` (32- or 64-bit), as (name, value).
    pub fn enum_members(&self, name: &str) -> Option<Vec<(String, i64)>> {
        let t = self.named(&[KIND_ENUM, KIND_ENUM64], name)?;
        let size = if t.kind == KIND_ENUM { 8 } else { 12 };
        (0..t.vlen as usize)
            .map(|i| {
                let at = t.extra + i * size;
                let name = String::from_utf8_lossy(self.str_at(self.u32_at(at)?)?).into_owned();
                let lo = self.u32_at(at + 4)?;
                let value = match (t.kind, t.signed) {
                    (KIND_ENUM, true) => i64::from(lo as i32),
                    (KIND_ENUM, false) => i64::from(lo),
                    _ => ((u64::from(self.u32_at(at + 8)?) << 32) | u64::from(lo)) as i64,
                };
                Some((name, value))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A BTF blob: an int, a function `f` (with its prototype), an enum `e {A=1, B=-2}`
    /// (signed), an enum64 `g {C=1<<40}`, a typedef `t` of the int.
    fn blob() -> Vec<u8> {
        let strs = b"\0int\0f\0e\0A\0B\0g\0C\0t\0";
        let off = |s: &str| {
            let needle = [s.as_bytes(), b"\0"].concat();
            strs.windows(needle.len())
                .position(|w| w == needle.as_slice())
                .unwrap() as u32
        };
        let mut t: Vec<u32> = Vec::new();
        // 1: int, 4 bytes
        t.extend([off("int"), KIND_INT << 24, 4, 32]);
        // 2: func_proto returning int, no params
        t.extend([0, KIND_FUNC_PROTO << 24, 1]);
        // 3: func f
        t.extend([off("f"), KIND_FUNC << 24, 2]);
        // 4: enum e (signed) with A = 1, B = -2
        t.extend([off("e"), (1 << 31) | (KIND_ENUM << 24) | 2, 4]);
        t.extend([off("A"), 1, off("B"), (-2i32) as u32]);
        // 5: enum64 g with C = 1 << 40
        t.extend([off("g"), (KIND_ENUM64 << 24) | 1, 8]);
        t.extend([off("C"), 0, 1 << 8]);
        // 6: typedef t -> 1
        t.extend([off("t"), KIND_TYPEDEF << 24, 1]);
        let types: Vec<u8> = t.iter().flat_map(|v| v.to_ne_bytes()).collect();
        let mut b = Vec::new();
        b.extend(MAGIC.to_ne_bytes());
        b.extend([1u8, 0]);
        for v in [
            24u32,
            0,
            types.len() as u32,
            types.len() as u32,
            strs.len() as u32,
        ] {
            b.extend(v.to_ne_bytes());
        }
        b.extend(types);
        b.extend(strs);
        b
    }

    #[test]
    fn finds_functions_and_enums() {
        let btf = RawBtf::parse(blob()).unwrap();
        assert_eq!(btf.func_id("f"), Some(3));
        assert_eq!(btf.func_id("e"), None);
        assert_eq!(btf.func_id("nope"), None);
        assert_eq!(
            btf.enum_members("e"),
            Some(vec![("A".into(), 1), ("B".into(), -2)])
        );
        assert_eq!(btf.enum_members("g"), Some(vec![("C".into(), 1 << 40)]));
        assert_eq!(btf.typedef_id("t"), Some(6));
        assert_eq!(btf.typedef_id("f"), None);
    }

    #[test]
    fn bad_input_is_an_error() {
        assert!(RawBtf::parse(vec![1, 2, 3]).is_err());
        let mut b = blob();
        b.truncate(b.len() - 4);
        assert!(RawBtf::parse(b).is_err());
    }

    /// The walk agrees with libbpf on the running kernel (where it has BTF).
    #[test]
    fn agrees_with_libbpf_on_vmlinux() {
        use libbpf_rs::libbpf_sys as sys;
        let Ok(btf) = RawBtf::vmlinux() else { return };
        for f in ["skb_do_redirect", "netif_rx", "__napi_schedule"] {
            let name = std::ffi::CString::new(f).unwrap();
            // SAFETY: `name` is a valid NUL-terminated string that outlives the call.
            let id =
                unsafe { sys::libbpf_find_vmlinux_btf_id(name.as_ptr(), sys::BPF_TRACE_FEXIT) };
            assert_eq!(btf.func_id(f), u32::try_from(id).ok(), "{f}");
        }
        // tp_btf programs attach to the btf_trace_<tracepoint> typedef.
        for tp in ["netif_receive_skb", "net_dev_start_xmit"] {
            let name = std::ffi::CString::new(tp).unwrap();
            // SAFETY: as above.
            let id =
                unsafe { sys::libbpf_find_vmlinux_btf_id(name.as_ptr(), sys::BPF_TRACE_RAW_TP) };
            let ours = btf.typedef_id(&format!("btf_trace_{tp}"));
            assert_eq!(ours, u32::try_from(id).ok(), "{tp}");
            assert!(ours.is_some(), "{tp}");
        }
    }
}
