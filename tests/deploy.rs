//! deploy/: the DaemonSet validates against the Kubernetes schemas (offline, with the
//! kubernetes-validate package), asks for what sirqtop needs and no more, and runs
//! arguments sirqtop accepts. No root needed.

use std::path::Path;
use std::process::Command;

use clap::Parser;

mod common;

fn manifest() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/daemonset.yaml"))
        .unwrap()
}

fn validate(path: &Path) -> std::process::Output {
    Command::new("kubernetes-validate")
        .arg("--strict")
        .arg(path)
        .output()
        .expect("kubernetes-validate")
}

#[test]
fn daemonset_validates_against_the_kubernetes_schemas() {
    require_tool!(
        "kubernetes-validate",
        &["--version"],
        "pip install kubernetes-validate"
    );
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/daemonset.yaml");
    let out = validate(&path);
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("daemonset/sirqtop"), "{text}");

    // The validator does reject a broken manifest (so the pass above means something).
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("broken.yaml");
    std::fs::write(
        &broken,
        manifest().replace("hostPID: true", "hostPID: yes-please"),
    )
    .unwrap();
    assert!(!validate(&broken).status.success());
    std::fs::write(
        &broken,
        manifest().replace("readOnly: true", "readOnly: true\n              bogus: 1"),
    )
    .unwrap();
    assert!(
        !validate(&broken).status.success(),
        "--strict rejects unknown fields"
    );
}

/// The `- item` lines of the YAML list under `key:` (one level, as the manifest writes it).
fn list_after(text: &str, key: &str) -> Vec<String> {
    let mut lines = text.lines().skip_while(|l| l.trim() != key).skip(1);
    let mut out = Vec::new();
    for l in lines.by_ref() {
        let t = l.trim();
        if t.starts_with('#') {
            continue;
        }
        match t.strip_prefix("- ") {
            Some(item) => out.push(item.to_string()),
            None => break,
        }
    }
    out
}

#[test]
fn daemonset_runs_sirqtop_serve_as_it_is_documented() {
    let m = manifest();
    let args = list_after(&m, "args:");
    assert_eq!(args[0], "serve");
    let cli = sirqtop::cli::Cli::try_parse_from(
        std::iter::once("sirqtop".to_string()).chain(args.clone()),
    )
    .unwrap_or_else(|e| panic!("the manifest's args do not parse: {e}"));
    let Some(sirqtop::cli::Command::Serve(serve)) = cli.command else {
        panic!("not serve: {args:?}");
    };
    let port = serve.listen.port();
    assert!(
        serve.listen.ip().is_unspecified(),
        "a DaemonSet serves the node's address"
    );
    assert_eq!(cli.host_root.as_deref(), Some(Path::new("/host")));
    // The scrape annotation, the container port and both probes use the listen port.
    assert!(m.contains(&format!("prometheus.io/port: \"{port}\"")));
    assert!(m.contains(&format!("containerPort: {port}")));
    assert_eq!(
        m.matches(&format!("port: {port}\n")).count(),
        2,
        "readiness and liveness"
    );
    assert!(m.contains("path: /healthz"));
    // Capabilities, not privileged; every host mount read-only.
    assert!(m.contains("privileged: false"));
    assert!(m.contains(r#"add: ["BPF", "PERFMON", "SYS_ADMIN", "NET_ADMIN", "SYS_PTRACE"]"#));
    assert!(m.contains(r#"drop: ["ALL"]"#));
    assert!(m.contains("hostPID: true") && m.contains("hostNetwork: true"));
    let mounts = m.matches("mountPath: ").count();
    assert_eq!(mounts, 7);
    assert_eq!(m.matches("readOnly: true").count(), mounts);
    for path in [
        "/sys/kernel/btf",
        "/proc",
        "/run/netns",
        "/var/run/docker/netns",
        "/var/log/pods",
    ] {
        assert!(m.contains(&format!("path: {path}\n")), "hostPath {path}");
        let under_root = if path.starts_with("/sys") {
            path.to_string()
        } else {
            format!("/host{path}")
        };
        assert!(
            m.contains(&format!("mountPath: {under_root}\n")),
            "mount of {path}"
        );
    }
}

#[test]
fn image_default_command_parses() {
    let dockerfile =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/Dockerfile"))
            .unwrap();
    assert!(
        dockerfile.lines().any(|l| l.trim() == "FROM scratch"),
        "no base image to pull"
    );
    let cmd = dockerfile
        .lines()
        .find_map(|l| l.strip_prefix("CMD "))
        .expect("a CMD line");
    let args: Vec<String> = serde_json::from_str(cmd).expect("CMD in exec form");
    let cli = sirqtop::cli::Cli::try_parse_from(std::iter::once("sirqtop".to_string()).chain(args))
        .unwrap_or_else(|e| panic!("the image's CMD does not parse: {e}"));
    assert!(matches!(cli.command, Some(sirqtop::cli::Command::Serve(_))));
}
