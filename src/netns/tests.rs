use super::*;

fn sel(s: &str) -> Result<NetnsSelector, NetnsError> {
    s.parse()
}

#[test]
fn selector_parsing() {
    assert_eq!(sel("pid:123").unwrap(), NetnsSelector::Pid(123));
    assert_eq!(sel("pid:0").unwrap(), NetnsSelector::Pid(0));
    assert_eq!(sel("4026531840").unwrap(), NetnsSelector::Inode(4026531840));
    assert_eq!(
        sel("/proc/42/ns/net").unwrap(),
        NetnsSelector::Path("/proc/42/ns/net".into())
    );
    assert_eq!(
        sel("./netns-file").unwrap(),
        NetnsSelector::Path("./netns-file".into())
    );
    assert_eq!(sel("pod-a").unwrap(), NetnsSelector::Name("pod-a".into()));
    // Not all digits, no slash: a name.
    assert_eq!(sel("123abc").unwrap(), NetnsSelector::Name("123abc".into()));
    assert_eq!(sel("pid").unwrap(), NetnsSelector::Name("pid".into()));
}

#[test]
fn selector_parse_errors() {
    for (input, msg) in [
        ("", "empty network namespace selector"),
        ("pid:", "invalid pid in 'pid:'"),
        ("pid:abc", "invalid pid in 'pid:abc' (expected pid:NUMBER)"),
        ("pid:+5", "invalid pid in 'pid:+5'"),
        ("pid:-1", "invalid pid in 'pid:-1'"),
        ("pid:99999999999", "invalid pid in 'pid:99999999999'"),
        ("99999999999", "invalid namespace inode '99999999999'"),
        ("..", "invalid network namespace name '..'"),
        (".", "invalid network namespace name '.'"),
    ] {
        let err = sel(input).expect_err(input);
        let text = err.to_string();
        assert!(text.starts_with(msg), "{input:?}: {text}");
        assert!(!text.contains('\n'));
    }
}

#[test]
fn selector_display_round_trips() {
    for s in ["pod-a", "/run/netns/x", "pid:7", "4026531840"] {
        assert_eq!(sel(s).unwrap().to_string(), s);
    }
}

#[test]
fn error_messages() {
    assert_eq!(
        NetnsError::UnknownName("pod-a".into()).to_string(),
        "unknown network namespace name 'pod-a' (not in /run/netns; see `ip netns list`)"
    );
    assert_eq!(
        NetnsError::NoSuchPid(4242).to_string(),
        "no process with pid 4242"
    );
    assert_eq!(
        NetnsError::NotNetnsFile {
            path: "/tmp/x".into(),
            detail: None
        }
        .to_string(),
        "'/tmp/x' is not a network namespace file"
    );
    assert_eq!(
        NetnsError::NotNetnsFile {
            path: "/proc/1/ns/mnt".into(),
            detail: Some("it is a mount namespace".into())
        }
        .to_string(),
        "'/proc/1/ns/mnt' is not a network namespace file (it is a mount namespace)"
    );
    assert_eq!(
        NetnsError::NoSuchInode(4026532000).to_string(),
        "no network namespace with inode 4026532000"
    );
}

/// These only read /proc/self, which every process may.
#[test]
fn resolve_paths_against_proc_self() {
    let own = self_inode().expect("own netns");
    let by_path = NetnsSelector::Path("/proc/self/ns/net".into())
        .resolve()
        .expect("resolve /proc/self/ns/net");
    assert_eq!(by_path, own);
    let pid = std::process::id();
    assert_eq!(NetnsSelector::Pid(pid).resolve().expect("own pid"), own);

    let err = NetnsSelector::Path("/proc/self/ns/uts".into())
        .resolve()
        .expect_err("uts is not net");
    assert_eq!(
        err.to_string(),
        "'/proc/self/ns/uts' is not a network namespace file (it is a uts namespace)"
    );
    let err = NetnsSelector::Path("/proc/self".into())
        .resolve()
        .expect_err("directory");
    assert!(matches!(err, NetnsError::NotNetnsFile { .. }), "{err}");
    let file = tempfile::NamedTempFile::new().expect("tempfile");
    let err = NetnsSelector::Path(file.path().into())
        .resolve()
        .expect_err("regular file");
    assert_eq!(
        err.to_string(),
        format!(
            "'{}' is not a network namespace file",
            file.path().display()
        )
    );
    let err = NetnsSelector::Path("/nonexistent/sirqtop/ns".into())
        .resolve()
        .expect_err("missing");
    assert!(matches!(err, NetnsError::NoSuchPath(_)), "{err}");
    // Above PID_MAX_LIMIT (2^22): never a process.
    let err = NetnsSelector::Pid(999_999_999)
        .resolve()
        .expect_err("no pid");
    assert_eq!(err.to_string(), "no process with pid 999999999");
}

fn info(inode: NetnsInode) -> NetnsInfo {
    NetnsInfo::new(inode)
}

#[test]
fn label_precedence() {
    let container = ContainerRef::new(
        "docker",
        "abcdef1234567890abcdef1234567890abcdef1234567890abcdef1234567890",
        None,
    );
    let mut i = info(4026532000);
    assert_eq!(i.label(), "netns:4026532000");
    i.comm = Some("sleep".into());
    assert_eq!(i.label(), "netns:4026532000", "comm without pid");
    i.pid = Some(42);
    assert_eq!(i.label(), "sleep[42]");
    i.container = Some(container);
    assert_eq!(i.label(), "docker:abcdef123456");
    i.ip_netns_name = Some("pod-a".into());
    assert_eq!(i.label(), "pod-a");
    // Names of the owner beat the ip-netns name (CNI's `cni-<uuid>`).
    let c = i.container.as_mut().unwrap();
    c.name = Some("web".into());
    assert_eq!(i.label(), "web");
    let c = i.container.as_mut().unwrap();
    c.pod = Some("web-0".into());
    assert_eq!(i.label(), "web", "a pod needs its namespace too");
    i.container.as_mut().unwrap().pod_namespace = Some("shop".into());
    assert_eq!(i.label(), "shop/web-0");
    i.is_host = true;
    assert_eq!(i.label(), "host");
}

#[test]
fn topology_lookups() {
    let mut t = Topology::default();
    let mut host = info(1);
    host.is_host = true;
    t.namespaces.insert(1, host);
    let a = LinkInfo {
        netns: 1,
        ifindex: 5,
        name: "veth-h".into(),
        kind: Some("veth".into()),
        peer: Some((2, 3)),
    };
    let b = LinkInfo {
        netns: 2,
        ifindex: 3,
        name: "eth0".into(),
        kind: Some("veth".into()),
        peer: Some((1, 5)),
    };
    t.links.insert((1, 5), a.clone());
    t.links.insert((2, 3), b.clone());
    assert_eq!(t.peer_of(1, 5), Some(&b));
    assert_eq!(t.peer_of(2, 3), Some(&a));
    assert_eq!(t.peer_of(1, 9), None);
    assert_eq!(t.label(1), "host");
    assert_eq!(t.label(2), "netns:2");
    assert_eq!(t.links_in(2), vec![&b]);
}
