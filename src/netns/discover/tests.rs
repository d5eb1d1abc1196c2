use super::*;

fn raw(ifindex: u32, link: Option<u32>, nsid: Option<i32>) -> RawLink {
    RawLink {
        ifindex,
        name: format!("veth{ifindex}"),
        kind: Some("veth".into()),
        loopback: false,
        link,
        link_netnsid: nsid,
    }
}

#[test]
fn veth_peer_rules() {
    let nsids = HashMap::from([((10, 0), 20)]);
    // Peer in another namespace.
    assert_eq!(
        veth_peer(10, &raw(5, Some(7), Some(0)), &nsids),
        Some((20, 7))
    );
    // IFLA_LINK omitted (older kernels): same ifindex as ours, in the other namespace.
    assert_eq!(veth_peer(10, &raw(5, None, Some(0)), &nsids), Some((20, 5)));
    // Unknown nsid: peer unknown.
    assert_eq!(veth_peer(10, &raw(5, Some(7), Some(3)), &nsids), None);
    // Same namespace.
    assert_eq!(veth_peer(10, &raw(5, Some(6), None), &nsids), Some((10, 6)));
    // Peer being destroyed, or no IFLA_LINK at all within one namespace.
    assert_eq!(veth_peer(10, &raw(5, Some(0), None), &nsids), None);
    assert_eq!(veth_peer(10, &raw(5, None, None), &nsids), None);
}

#[test]
fn link_info_kinds() {
    let nsids = HashMap::new();
    let lo = RawLink {
        ifindex: 1,
        name: "lo".into(),
        kind: None,
        loopback: true,
        link: None,
        link_netnsid: None,
    };
    assert_eq!(link_info(1, &lo, &nsids).kind.as_deref(), Some("loopback"));
    let eth = RawLink {
        ifindex: 2,
        name: "eth0".into(),
        loopback: false,
        ..lo.clone()
    };
    assert_eq!(link_info(1, &eth, &nsids).kind, None);
    // A macvlan's IFLA_LINK is its lower device, not a peer.
    let mv = RawLink {
        kind: Some("macvlan".into()),
        link: Some(2),
        ..eth.clone()
    };
    assert_eq!(link_info(1, &mv, &nsids).peer, None);
}

#[test]
fn candidate_order_prefers_matching_veth() {
    let targets: Vec<Target> = [1, 2, 3, 4]
        .iter()
        .map(|&i| Target {
            inode: i,
            path: PathBuf::from(format!("/x/{i}")),
            is_host: i == 1,
        })
        .collect();
    // In ns 2: veth ifindex 3 -> peer ifindex 9 behind nsid 0.
    let here = vec![raw(3, Some(9), Some(0))];
    let links = HashMap::from([
        (1, vec![raw(9, Some(4), Some(1))]), // host: ifindex 9 but points at 4, not 3
        (2, here.clone()),
        (3, vec![raw(9, Some(3), Some(0))]), // the real peer
        (4, vec![]),
    ]);
    let order: Vec<NetnsInode> = candidate_order(2, 0, &here, &targets, &links)
        .iter()
        .map(|t| t.inode)
        .collect();
    assert_eq!(order, vec![3, 1, 4]);
}

#[test]
fn mountinfo_netns_mounts() {
    let content = "\
22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
612 29 0:4 net:[4026532659] /run/netns/pod-a rw shared:251 - nsfs nsfs rw
613 29 0:4 net:[4026532700] /run/docker/netns/1a2b3c rw - nsfs nsfs rw
614 29 0:4 mnt:[4026532701] /run/some/mnt rw - nsfs nsfs rw
615 29 0:4 net:[4026532702] /var/lib/my\\040dir/ns rw shared:3 master:1 - nsfs nsfs rw
616 29 0:22 / /proc rw,nosuid - proc proc rw
";
    assert_eq!(
        parse_mountinfo_netns(content),
        vec![
            PathBuf::from("/run/netns/pod-a"),
            PathBuf::from("/run/docker/netns/1a2b3c"),
            PathBuf::from("/var/lib/my dir/ns"),
        ]
    );
    assert_eq!(unescape_octal("a\\134b\\011c\\"), "a\\b\tc\\");
    assert_eq!(unescape_octal("\\04"), "\\04");
}
