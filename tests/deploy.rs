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
    assert_eq!(mounts, 8);
    assert_eq!(m.matches("readOnly: true").count(), mounts);
    // The web config (TLS, basic auth) from a Secret, next to the files it names.
    let web = serve.web_config_file.expect("--web.config.file");
    let dir = web.parent().unwrap().display().to_string();
    assert!(
        m.contains(&format!("mountPath: {dir}\n")),
        "web config mounted"
    );
    assert!(m.contains("secretName: sirqtop-web"));
    assert_eq!(m.matches("scheme: HTTPS").count(), 2, "probes over TLS");
    assert!(m.contains("prometheus.io/scheme: https"));
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

fn deploy_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy")
}

fn promtool(args: &[&str], dir: &Path) -> (bool, String) {
    let out = Command::new("promtool")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("promtool");
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

#[test]
fn prometheus_rules_check_and_pass_their_unit_tests() {
    require_tool!("promtool", &["--version"], "prometheus");
    let dir = deploy_dir();
    let (ok, text) = promtool(&["check", "rules", "prometheus-rules.yaml"], &dir);
    assert!(ok, "{text}");
    assert!(text.contains("SUCCESS: 6 rules found"), "{text}");
    let (ok, text) = promtool(&["test", "rules", "prometheus-rules.test.yaml"], &dir);
    assert!(ok, "{text}");

    // The unit tests do catch a wrong rule: the alert's threshold raised past the pod's
    // 0.3 of a CPU no longer fires.
    let tmp = tempfile::tempdir().unwrap();
    let rules = std::fs::read_to_string(dir.join("prometheus-rules.yaml")).unwrap();
    assert!(rules.contains("> 0.2\n"));
    std::fs::write(
        tmp.path().join("prometheus-rules.yaml"),
        rules.replace("> 0.2\n", "> 0.4\n"),
    )
    .unwrap();
    std::fs::copy(
        dir.join("prometheus-rules.test.yaml"),
        tmp.path().join("prometheus-rules.test.yaml"),
    )
    .unwrap();
    let (ok, text) = promtool(&["test", "rules", "prometheus-rules.test.yaml"], tmp.path());
    assert!(!ok, "{text}");
    assert!(text.contains("SirqtopPodSoftirqHigh"), "{text}");
}

/// Every panel's query of the Grafana dashboard, with its variables filled in as Grafana
/// would, is PromQL that Prometheus accepts (checked as recording rules by promtool).
#[test]
fn grafana_dashboard_queries_are_valid_promql() {
    require_tool!("promtool", &["--version"], "prometheus");
    let body = std::fs::read_to_string(deploy_dir().join("grafana-dashboard.json")).unwrap();
    let dash: serde_json::Value = serde_json::from_str(&body).expect("dashboard is JSON");
    let panels = dash["panels"].as_array().expect("panels");
    let mut exprs: Vec<String> = panels
        .iter()
        .flat_map(|p| p["targets"].as_array().cloned().unwrap_or_default())
        .map(|t| t["expr"].as_str().expect("target expr").to_string())
        .collect();
    assert_eq!(exprs.len(), panels.len(), "one query per panel");
    for v in dash["templating"]["list"].as_array().unwrap() {
        if let Some(q) = v["query"]["query"].as_str() {
            // label_values(METRIC_SELECTOR, label): the selector is a query of its own.
            let inner = q
                .strip_prefix("label_values(")
                .and_then(|r| r.rsplit_once(','))
                .map(|(sel, _)| sel.to_string())
                .expect("label_values(...) variable");
            exprs.push(inner);
        }
    }
    let fill = |e: &str| {
        e.replace("$__rate_interval", "5m")
            .replace("$instance", ".*")
            .replace("$namespace", ".*")
    };
    let rules = |exprs: &[String]| {
        let mut y = String::from("groups:\n  - name: dashboard\n    rules:\n");
        for (n, e) in exprs.iter().enumerate() {
            let e = serde_json::to_string(&fill(e)).unwrap();
            y.push_str(&format!(
                "      - record: dashboard:panel_{n}\n        expr: {e}\n"
            ));
        }
        y
    };
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("dashboard.yaml"), rules(&exprs)).unwrap();
    let (ok, text) = promtool(&["check", "rules", "dashboard.yaml"], tmp.path());
    assert!(ok, "{text}");
    assert!(
        text.contains(&format!("SUCCESS: {} rules found", exprs.len())),
        "{text}"
    );
    // And promtool does reject a broken query.
    let mut broken = exprs.clone();
    broken.push("sum by (instance (rate(sirqtop_uptime_seconds[5m]))".into());
    std::fs::write(tmp.path().join("broken.yaml"), rules(&broken)).unwrap();
    let (ok, text) = promtool(&["check", "rules", "broken.yaml"], tmp.path());
    assert!(!ok, "{text}");
}

/// The shipped scrape configuration is valid for Prometheus (promtool, with its files in
/// place) and scrapes over HTTPS with basic auth.
#[test]
fn prometheus_scrape_example_checks() {
    require_tool!("promtool", &["--version"], "prometheus");
    let text = std::fs::read_to_string(deploy_dir().join("prometheus-scrape.yaml")).unwrap();
    for key in [
        "scheme: https",
        "tls_config:",
        "ca_file:",
        "basic_auth:",
        "password_file:",
    ] {
        assert!(text.contains(key), "{key}");
    }
    // promtool checks that the files it names exist: put them in a scratch directory.
    let dir = tempfile::tempdir().unwrap();
    let local = dir.path().display().to_string();
    std::fs::write(dir.path().join("ca.crt"), "").unwrap();
    std::fs::write(dir.path().join("password"), "secret\n").unwrap();
    let cfg = dir.path().join("prometheus.yml");
    // Debian's Prometheus is built without Kubernetes discovery: static targets instead.
    let sd = "    kubernetes_sd_configs:\n      - role: pod\n        namespaces:\n          names: [sirqtop]\n";
    assert!(text.contains(sd), "the discovery block moved");
    let text = text
        .replace(
            sd,
            "    static_configs:\n      - targets: ['node-1:9864']\n",
        )
        .replace("/etc/prometheus/sirqtop", &local);
    std::fs::write(&cfg, text).unwrap();
    let (ok, out) = promtool(&["check", "config", &cfg.display().to_string()], dir.path());
    assert!(ok, "{out}");
}
