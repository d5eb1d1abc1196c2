//! `/proc/PID/cgroup` -> container reference, for cgroup v1, v2 and hybrid layouts of the
//! common runtimes (docker, containerd/CRI, cri-o, podman, kubelet's cgroupfs driver).

use super::ContainerRef;

/// systemd scope (or cgroupfs leaf) prefixes that runtimes put before the container id.
/// `crio-conmon-<id>` / `libpod-conmon-<id>` are monitor processes, not containers: they
/// are rejected naturally because "conmon-<id>" is not a container id.
const SCOPE_PREFIXES: &[(&str, &str)] = &[
    ("cri-containerd-", "containerd"),
    ("docker-", "docker"),
    ("crio-", "cri-o"),
    ("libpod-", "podman"),
    ("nerdctl-", "containerd"),
];

/// Parses the content of a `/proc/PID/cgroup` file. Each line is `ID:CONTROLLERS:PATH`;
/// the first line whose path names a container wins (all lines agree in practice).
pub fn parse_cgroup(content: &str) -> Option<ContainerRef> {
    content.lines().find_map(|line| {
        let mut fields = line.splitn(3, ':');
        let _hierarchy = fields.next()?;
        let _controllers = fields.next()?;
        parse_cgroup_path(fields.next()?)
    })
}

/// Parses one cgroup path such as
/// `/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod<uid>.slice/cri-containerd-<id>.scope`.
pub fn parse_cgroup_path(path: &str) -> Option<ContainerRef> {
    // A removed cgroup is shown with this suffix.
    let path = path.trim_end().trim_end_matches(" (deleted)");
    let comps: Vec<&str> = path.split('/').filter(|c| !c.is_empty()).collect();
    let in_kubepods = comps.iter().any(|c| c.contains("kubepods"));
    let pod_uid = if in_kubepods {
        comps.iter().rev().find_map(|c| pod_uid_of(c))
    } else {
        None
    };
    // Walk from the leaf: nested cgroups (podman's `libpod-<id>.scope/container`, kind's
    // `docker-<node>.scope/kubelet.slice/.../cri-containerd-<id>.scope`) name the
    // innermost container last.
    for (i, comp) in comps.iter().enumerate().rev() {
        if let Some((runtime, id)) = scoped_container(comp) {
            return Some(ContainerRef::new(runtime, id, pod_uid));
        }
        // cgroupfs layouts: `/docker/<id>`, `/kubepods/burstable/pod<uid>/<id>`,
        // `/ecs/<task>/<id>`: the runtime is named by the top-level cgroup.
        if i > 0 && is_container_id(comp) {
            let runtime = if in_kubepods {
                "kubepods"
            } else {
                comps[0].trim_end_matches(".slice")
            };
            return Some(ContainerRef::new(runtime, comp, pod_uid));
        }
    }
    None
}

/// `docker-<id>.scope`, `cri-containerd-<id>.scope`, `crio-<id>` (cgroupfs driver has no
/// `.scope`), ... -> (runtime, id).
fn scoped_container(comp: &str) -> Option<(&'static str, &str)> {
    let stem = comp.strip_suffix(".scope").unwrap_or(comp);
    SCOPE_PREFIXES.iter().find_map(|(prefix, runtime)| {
        let id = stem.strip_prefix(prefix)?;
        is_container_id(id).then_some((*runtime, id))
    })
}

/// Container ids of all these runtimes are 64 hex digits.
fn is_container_id(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// `kubepods-burstable-pod<uid_with_underscores>.slice` (systemd driver) or `pod<uid>`
/// (cgroupfs driver) -> the pod UID with dashes.
fn pod_uid_of(comp: &str) -> Option<String> {
    let raw = if let Some(stem) = comp.strip_suffix(".slice") {
        let at = stem.rfind("-pod")?;
        &stem[at + "-pod".len()..]
    } else {
        comp.strip_prefix("pod")?
    };
    // A UUID (36 chars), or a 32-hex config hash for static pods.
    let valid = (32..=36).contains(&raw.len())
        && raw
            .bytes()
            .all(|b| b.is_ascii_hexdigit() || b == b'-' || b == b'_');
    valid.then(|| raw.replace('_', "-"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "3f4e1c2b9a8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f";
    const UID: &str = "0a1b2c3d-4e5f-6789-abcd-ef0123456789";

    fn cref(runtime: &str, pod: Option<&str>) -> Option<ContainerRef> {
        Some(ContainerRef::new(runtime, ID, pod.map(Into::into)))
    }

    #[test]
    fn docker_cgroup_v1() {
        let content = format!(
            "12:pids:/docker/{ID}\n11:memory:/docker/{ID}\n\
             1:name=systemd:/docker/{ID}\n0::/system.slice/containerd.service\n"
        );
        assert_eq!(parse_cgroup(&content), cref("docker", None));
    }

    #[test]
    fn docker_cgroup_v2_systemd_and_cgroupfs() {
        assert_eq!(
            parse_cgroup(&format!("0::/system.slice/docker-{ID}.scope\n")),
            cref("docker", None)
        );
        // docker with the cgroupfs driver on a v2 host.
        assert_eq!(
            parse_cgroup(&format!("0::/docker/{ID}\n")),
            cref("docker", None)
        );
    }

    #[test]
    fn containerd_cri_systemd_driver() {
        let uid_us = UID.replace('-', "_");
        let content = format!(
            "0::/kubepods.slice/kubepods-burstable.slice/\
             kubepods-burstable-pod{uid_us}.slice/cri-containerd-{ID}.scope\n"
        );
        assert_eq!(parse_cgroup(&content), cref("containerd", Some(UID)));
        // Guaranteed QoS has no QoS slice.
        let content =
            format!("0::/kubepods.slice/kubepods-pod{uid_us}.slice/cri-containerd-{ID}.scope");
        assert_eq!(parse_cgroup(&content), cref("containerd", Some(UID)));
    }

    #[test]
    fn kubepods_cgroupfs_driver_v1() {
        let content = format!(
            "11:cpuset:/kubepods/burstable/pod{UID}/{ID}\n\
             1:name=systemd:/kubepods/burstable/pod{UID}/{ID}\n"
        );
        assert_eq!(parse_cgroup(&content), cref("kubepods", Some(UID)));
        let content = format!("4:memory:/kubepods/pod{UID}/{ID}\n");
        assert_eq!(parse_cgroup(&content), cref("kubepods", Some(UID)));
    }

    #[test]
    fn crio() {
        let uid_us = UID.replace('-', "_");
        let content = format!(
            "0::/kubepods.slice/kubepods-besteffort.slice/\
             kubepods-besteffort-pod{uid_us}.slice/crio-{ID}.scope\n"
        );
        assert_eq!(parse_cgroup(&content), cref("cri-o", Some(UID)));
        // cri-o with the cgroupfs driver: no ".scope".
        let content = format!("7:devices:/kubepods/besteffort/pod{UID}/crio-{ID}\n");
        assert_eq!(parse_cgroup(&content), cref("cri-o", Some(UID)));
        // conmon is not the container.
        let content = format!("0::/machine.slice/crio-conmon-{ID}.scope\n");
        assert_eq!(parse_cgroup(&content), None);
    }

    #[test]
    fn podman() {
        assert_eq!(
            parse_cgroup(&format!("0::/machine.slice/libpod-{ID}.scope\n")),
            cref("podman", None)
        );
        // podman >= 4 puts the payload in a sub-cgroup; rootless runs under user.slice.
        assert_eq!(
            parse_cgroup(&format!(
                "0::/user.slice/user-1000.slice/user@1000.service/user.slice/\
                 libpod-{ID}.scope/container\n"
            )),
            cref("podman", None)
        );
        assert_eq!(
            parse_cgroup(&format!("0::/machine.slice/libpod-conmon-{ID}.scope\n")),
            None
        );
    }

    #[test]
    fn kind_node_nested_in_docker() {
        let node = "a".repeat(64);
        let uid_us = UID.replace('-', "_");
        let content = format!(
            "0::/system.slice/docker-{node}.scope/kubelet.slice/kubelet-kubepods.slice/\
             kubelet-kubepods-besteffort.slice/kubelet-kubepods-besteffort-pod{uid_us}.slice/\
             cri-containerd-{ID}.scope\n"
        );
        assert_eq!(parse_cgroup(&content), cref("containerd", Some(UID)));
        // The kind node's own kubelet is in the node container.
        let content = format!("0::/system.slice/docker-{node}.scope/kubelet.slice/kubelet.service");
        let got = parse_cgroup(&content).expect("node container");
        assert_eq!((got.runtime.as_str(), got.id), ("docker", node));
    }

    #[test]
    fn static_pod_hash_uid_and_deleted_suffix() {
        let hash = "5c7e4a2b9d1f3e6a8b0c2d4e6f8a0b1c";
        let content = format!(
            "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{hash}.slice/\
             cri-containerd-{ID}.scope (deleted)\n"
        );
        assert_eq!(parse_cgroup(&content), cref("containerd", Some(hash)));
    }

    #[test]
    fn non_containers() {
        for content in [
            "0::/\n",
            "0::/init.scope\n",
            "0::/user.slice/user-1000.slice/session-3.scope\n",
            "0::/system.slice/sshd.service\n",
            "12:pids:/user.slice/user-0.slice/session-1.scope\n1:name=systemd:/\n0::/\n",
            "",
            "garbage",
            // A short hex component is not a container id.
            "0::/docker/abcdef\n",
        ] {
            assert_eq!(parse_cgroup(content), None, "{content:?}");
        }
        // A pod slice alone (no container scope) is not a container.
        assert_eq!(
            parse_cgroup(&format!(
                "0::/kubepods.slice/kubepods-pod{}.slice\n",
                UID.replace('-', "_")
            )),
            None
        );
    }

    #[test]
    fn other_cgroupfs_runtimes_use_top_level_name() {
        let content = format!("0::/ecs/0123456789abcdef/{ID}\n");
        assert_eq!(parse_cgroup(&content), cref("ecs", None));
    }
}
