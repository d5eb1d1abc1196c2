//! Who owns a namespace, in the words an operator uses: the Kubernetes pod
//! (`namespace/pod`) and container name, or a Docker container's name. Read from files
//! the kubelet and dockerd leave on the node, so no API server or daemon socket is needed:
//! the pod UID from the cgroup (see [`super::cgroup`]) is matched against
//! `/var/log/pods/<namespace>_<pod>_<uid>/`, a container id against
//! `/var/log/containers/<pod>_<namespace>_<container>-<id>.log` and
//! `/var/lib/docker/containers/<id>/config.v2.json`.
//!
//! Every path is taken from [`HostPaths`], so that sirqtop can run in a container with the
//! host's filesystem mounted under `--host-root`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use super::ContainerRef;

/// The host paths sirqtop reads: all under one root, `/` unless `--host-root` says
/// otherwise. Our own `/proc/self` is never taken from here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPaths {
    root: PathBuf,
    /// dockerd's `--data-root`, in host terms.
    docker_root: PathBuf,
}

/// dockerd's default `--data-root`.
pub const DOCKER_ROOT: &str = "/var/lib/docker";

impl Default for HostPaths {
    fn default() -> Self {
        HostPaths::new("/")
    }
}

static CURRENT: OnceLock<HostPaths> = OnceLock::new();

impl HostPaths {
    pub fn new(root: impl Into<PathBuf>) -> HostPaths {
        HostPaths {
            root: root.into(),
            docker_root: PathBuf::from(DOCKER_ROOT),
        }
    }

    /// Where dockerd keeps its containers (its `--data-root`), as a host path.
    pub fn with_docker_root(mut self, dir: impl Into<PathBuf>) -> HostPaths {
        self.docker_root = dir.into();
        self
    }

    /// The paths the process was started with (`/` until [`HostPaths::install`]).
    pub fn current() -> &'static HostPaths {
        CURRENT.get_or_init(HostPaths::default)
    }

    /// Sets the process-wide root once, before anything reads the host; fails when the
    /// root is not a directory or was already set to another one.
    pub fn install(self) -> Result<(), String> {
        if !self.root.is_dir() {
            return Err(format!(
                "--host-root {}: not a directory",
                self.root.display()
            ));
        }
        let set = CURRENT.get_or_init(|| self.clone());
        if *set != self {
            return Err(format!("host root already set to {}", set.root.display()));
        }
        Ok(())
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `ROOT/rel`; `rel` is absolute in host terms ("/proc").
    pub fn join(&self, rel: &str) -> PathBuf {
        self.root.join(rel.trim_start_matches('/'))
    }

    pub fn proc(&self) -> PathBuf {
        self.join("/proc")
    }
    pub fn pod_logs(&self) -> PathBuf {
        self.join("/var/log/pods")
    }
    pub fn container_logs(&self) -> PathBuf {
        self.join("/var/log/containers")
    }
    pub fn docker_containers(&self) -> PathBuf {
        self.join(&self.docker_root.join("containers").to_string_lossy())
    }
    pub fn docker_netns(&self) -> PathBuf {
        self.join("/var/run/docker/netns")
    }
}

/// A pod, from its log directory name `<namespace>_<pod>_<uid>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodDir {
    pub namespace: String,
    pub pod: String,
    pub uid: String,
    pub path: PathBuf,
}

/// Splits `<namespace>_<pod>_<uid>`. Namespaces and pod names are DNS labels/subdomains
/// (no `_`), so the two first underscores are the separators.
pub fn parse_pod_dir(name: &str) -> Option<(String, String, String)> {
    let mut parts = name.splitn(3, '_');
    let (ns, pod, uid) = (parts.next()?, parts.next()?, parts.next()?);
    if ns.is_empty() || pod.is_empty() || uid.is_empty() {
        return None;
    }
    Some((ns.to_string(), pod.to_string(), uid.to_string()))
}

/// Splits `<pod>_<namespace>_<container>-<id>.log` (the kubelet's /var/log/containers
/// link names) into (container, id).
pub fn parse_container_log(name: &str) -> Option<(String, String)> {
    let stem = name.strip_suffix(".log")?;
    let third = stem.splitn(3, '_').nth(2)?;
    let (container, id) = third.rsplit_once('-')?;
    (!container.is_empty() && id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| (container.to_string(), id.to_string()))
}

/// Reads a Docker container's name (`Name` in config.v2.json, without its leading `/`).
pub fn docker_name(paths: &HostPaths, id: &str) -> Option<String> {
    let file = paths.docker_containers().join(id).join("config.v2.json");
    let text = std::fs::read_to_string(file).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    let name = v.get("Name")?.as_str()?.trim_start_matches('/');
    (!name.is_empty()).then(|| name.to_string())
}

/// What one scan of the node's pod and container files found; built once per namespace
/// scan and asked for each namespace's container.
#[derive(Debug, Default)]
pub struct Owners {
    pods: HashMap<String, PodDir>,
    /// Container id -> container name, from /var/log/containers.
    container_names: HashMap<String, String>,
    paths: HostPaths,
}

impl Owners {
    /// Lists the kubelet's pod and container log directories (missing ones are simply
    /// empty: not a Kubernetes node).
    pub fn scan(paths: &HostPaths) -> Owners {
        let mut pods = HashMap::new();
        if let Ok(rd) = std::fs::read_dir(paths.pod_logs()) {
            for e in rd.flatten() {
                let Ok(name) = e.file_name().into_string() else {
                    continue;
                };
                if let Some((namespace, pod, uid)) = parse_pod_dir(&name) {
                    pods.insert(
                        uid.clone(),
                        PodDir {
                            namespace,
                            pod,
                            uid,
                            path: e.path(),
                        },
                    );
                }
            }
        }
        let mut container_names = HashMap::new();
        if let Ok(rd) = std::fs::read_dir(paths.container_logs()) {
            for e in rd.flatten() {
                if let Some((name, id)) = e.file_name().to_str().and_then(parse_container_log) {
                    container_names.insert(id, name);
                }
            }
        }
        Owners {
            pods,
            container_names,
            paths: paths.clone(),
        }
    }

    /// Fills in `name`, `pod` and `pod_namespace` of a container found in a cgroup.
    pub fn fill(&self, c: &mut ContainerRef) {
        if let Some(pod) = c.pod_uid.as_deref().and_then(|uid| self.pods.get(uid)) {
            c.pod = Some(pod.pod.clone());
            c.pod_namespace = Some(pod.namespace.clone());
            c.name = self
                .container_names
                .get(&c.id)
                .cloned()
                .or_else(|| only_container(&pod.path));
            return;
        }
        if c.runtime == "docker" {
            c.name = docker_name(&self.paths, &c.id);
        }
    }
}

/// The container of a pod that has exactly one (its sub-directories of the pod's log
/// directory): the namespace's first process is usually the pod's sandbox ("pause"),
/// which has no log directory, and with one container the name is unambiguous.
fn only_container(pod_dir: &Path) -> Option<String> {
    let mut names = std::fs::read_dir(pod_dir)
        .ok()?
        .flatten()
        .filter(|e| e.file_type().map(|t| t.is_dir()).unwrap_or(false))
        .filter_map(|e| e.file_name().into_string().ok());
    let first = names.next()?;
    names.next().is_none().then_some(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "3f4e1c2b9a8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f";
    const UID: &str = "0a1b2c3d-4e5f-6789-abcd-ef0123456789";

    fn cref(runtime: &str, uid: Option<&str>) -> ContainerRef {
        ContainerRef::new(runtime, ID, uid.map(Into::into))
    }

    #[test]
    fn pod_dir_names() {
        assert_eq!(
            parse_pod_dir(&format!("kube-system_coredns-5d78c9869d-x2k4p_{UID}")),
            Some((
                "kube-system".into(),
                "coredns-5d78c9869d-x2k4p".into(),
                UID.into()
            ))
        );
        assert_eq!(parse_pod_dir("default_web"), None);
        assert_eq!(parse_pod_dir("_web_uid"), None);
    }

    #[test]
    fn container_log_names() {
        assert_eq!(
            parse_container_log(&format!("web-0_shop_nginx-proxy-{ID}.log")),
            Some(("nginx-proxy".into(), ID.into()))
        );
        assert_eq!(parse_container_log("web-0_shop_nginx-abc.log"), None);
        assert_eq!(parse_container_log(&format!("web-0_shop_nginx-{ID}")), None);
    }

    #[test]
    fn pods_and_docker_names_from_files() {
        let root = tempfile::tempdir().unwrap();
        let paths = HostPaths::new(root.path());
        let pod = paths.pod_logs().join(format!("shop_web-0_{UID}"));
        std::fs::create_dir_all(pod.join("nginx")).unwrap();
        let dock = paths.docker_containers().join(ID);
        std::fs::create_dir_all(&dock).unwrap();
        std::fs::write(
            dock.join("config.v2.json"),
            r#"{"Name":"/redis-cache","Id":"x"}"#,
        )
        .unwrap();

        let owners = Owners::scan(&paths);
        let mut c = cref("containerd", Some(UID));
        owners.fill(&mut c);
        assert_eq!(c.pod.as_deref(), Some("web-0"));
        assert_eq!(c.pod_namespace.as_deref(), Some("shop"));
        assert_eq!(c.name.as_deref(), Some("nginx"), "the pod's only container");

        // Two containers: only a log link names the one this id is.
        std::fs::create_dir_all(pod.join("sidecar")).unwrap();
        let mut c = cref("containerd", Some(UID));
        Owners::scan(&paths).fill(&mut c);
        assert_eq!((c.pod.as_deref(), c.name.as_deref()), (Some("web-0"), None));
        std::fs::create_dir_all(paths.container_logs()).unwrap();
        std::fs::write(
            paths
                .container_logs()
                .join(format!("web-0_shop_sidecar-{ID}.log")),
            "",
        )
        .unwrap();
        let mut c = cref("containerd", Some(UID));
        Owners::scan(&paths).fill(&mut c);
        assert_eq!(c.name.as_deref(), Some("sidecar"));

        let mut d = cref("docker", None);
        owners.fill(&mut d);
        assert_eq!(d.name.as_deref(), Some("redis-cache"));
        assert_eq!(d.pod, None);

        // An unknown pod UID and a node without these directories leave names empty.
        let mut c = cref("containerd", Some("ffffffff-4e5f-6789-abcd-ef0123456789"));
        owners.fill(&mut c);
        assert_eq!((c.pod, c.name), (None, None));
        let empty = Owners::scan(&HostPaths::new("/nonexistent-sirqtop-root"));
        let mut d = cref("docker", None);
        empty.fill(&mut d);
        assert_eq!(d.name, None);
    }

    #[test]
    fn host_paths_join_under_root() {
        let p = HostPaths::new("/host");
        assert_eq!(p.proc(), PathBuf::from("/host/proc"));
        assert_eq!(p.join("/run/netns"), PathBuf::from("/host/run/netns"));
        assert_eq!(HostPaths::default().proc(), PathBuf::from("/proc"));
        assert_eq!(
            p.docker_containers(),
            PathBuf::from("/host/var/lib/docker/containers")
        );
        assert_eq!(
            p.with_docker_root("/data/docker").docker_containers(),
            PathBuf::from("/host/data/docker/containers")
        );
        assert!(HostPaths::new("/nonexistent-sirqtop-root")
            .install()
            .unwrap_err()
            .contains("not a directory"));
    }
}
