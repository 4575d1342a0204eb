//! Compose files: the showcase farm brought up from bundles/webfarm/compose.yaml
//! gives the same instances, limits, networks and ports as from farm.toml and
//! answers through its published port; a compose file with keys boxctl does
//! not map is refused with one line per key and nothing started; `farm
//! export` writes a stack compose file that parses back into the same farm
//! (and that `docker stack config` accepts) and Kubernetes manifests whose
//! structure is checked here (and by `kubectl kustomize`, which parses them
//! offline: `kubectl apply --dry-run=client` needs an API server).
//!
//! Images: as in tests/farm.rs, the web and proxy root filesystems are built
//! once into $BOXRUN_IMAGE_CACHE (default /var/cache/boxrun-images) by `up`.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{free_port, Env};

/// Runs `down -f FILE` on drop and removes what is left (instances, the
/// farm's networks), so that a failing test leaves nothing behind.
struct Up<'a> {
    env: &'a Env,
    file: PathBuf,
    nets: Vec<String>,
}

impl Drop for Up<'_> {
    fn drop(&mut self) {
        let _ = self
            .env
            .boxctl(&["down", "-f", self.file.to_str().unwrap_or("")]);
        let ids = self.env.boxctl(&["ps", "-a", "-q"]).stdout;
        for id in String::from_utf8_lossy(&ids).split_whitespace() {
            let _ = self.env.boxctl(&["rm", "-f", id]);
        }
        for n in &self.nets {
            let _ = self.env.boxctl(&["network", "rm", n]);
        }
    }
}

fn bundles() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../bundles")
}

fn image_cache() -> String {
    std::env::var("BOXRUN_IMAGE_CACHE").unwrap_or_else(|_| "/var/cache/boxrun-images".into())
}

/// A showcase file (`farm.toml` or `compose.yaml`) with this test's name,
/// subnets, port and image cache, and absolute build script paths.
fn showcase(file: &str, name: &str, back: &str, front: &str, port: u16) -> String {
    let text = std::fs::read_to_string(bundles().join("webfarm").join(file)).unwrap();
    let images = bundles().join("images");
    let images = images.to_str().unwrap();
    text.replace("name = \"webfarm\"", &format!("name = \"{name}\""))
        .replace("name: webfarm", &format!("name: {name}"))
        .replace("10.210.200.0/24", back)
        .replace("10.210.201.0/24", front)
        .replace("127.0.0.1:8080:80", &format!("127.0.0.1:{port}:80"))
        .replace("/var/cache/boxrun-images", &image_cache())
        .replace("../images", images)
}

/// One GET through `port` on loopback: (status, body).
fn get(port: u16) -> (u16, String) {
    let (status, _, body) = common::http_get(port);
    (status, body)
}

/// What a farm made, from `inspect`: per instance its image, limits
/// (memory, cpus, pids),
/// networks, published ports, restart policy, cow and command.
fn made(env: &Env) -> BTreeMap<String, serde_json::Value> {
    let mut out = BTreeMap::new();
    for p in env.ps_all() {
        let name = p["name"].as_str().unwrap().to_string();
        let i = env.inspect(&name);
        let keep = [
            "image", "memory", "cpus", "pids", "networks", "publish", "restart", "cow", "command",
            "net_mode", "env",
        ];
        let v: serde_json::Map<String, serde_json::Value> = keep
            .iter()
            .map(|k| (k.to_string(), i[*k].clone()))
            .collect();
        out.insert(name, serde_json::Value::Object(v));
    }
    out
}

#[test]
fn showcase_from_compose_is_the_farm_file_farm() {
    let env = Env::empty("compose");
    let name = format!("cw{}", std::process::id() % 100_000);
    let back = format!("{}0/24", common::free_subnet_prefix(217));
    let front = format!("{}0/24", common::free_subnet_prefix(217));
    let port = free_port();
    let nets = vec![format!("{name}-back"), format!("{name}-front")];
    let mut seen = Vec::new();
    for file in ["farm.toml", "compose.yaml"] {
        let path = env.dir.join(file);
        std::fs::write(&path, showcase(file, &name, &back, &front, port)).unwrap();
        let _up = Up {
            env: &env,
            file: path.clone(),
            nets: nets.clone(),
        };
        let out = env.ok(&["up", "-f", path.to_str().unwrap()]);
        assert!(
            out.contains(&format!("serving http://127.0.0.1:{port}/")),
            "{file}: {out}"
        );
        let (status, body) = get(port);
        assert_eq!(status, 200, "{file}: {body}");
        assert!(
            body.contains(&format!("Hello from {name}-web-")),
            "{file}: {body}"
        );
        seen.push(made(&env));
        if file == "compose.yaml" {
            // scale reads the compose file as up does.
            env.ok(&["scale", "-f", path.to_str().unwrap(), "web=2"]);
            let left: Vec<String> = made(&env).into_keys().collect();
            assert!(!left.contains(&format!("{name}-web-3")), "{left:?}");
            assert_eq!(get(port).0, 200);
        }
        env.ok(&["down", "-f", path.to_str().unwrap()]);
        assert!(env.ps_all().is_empty(), "{file}: down left instances");
    }
    let names: Vec<&String> = seen[0].keys().collect();
    assert_eq!(
        names,
        [
            format!("{name}-proxy"),
            format!("{name}-web-1"),
            format!("{name}-web-2"),
            format!("{name}-web-3")
        ]
        .iter()
        .collect::<Vec<_>>()
    );
    assert_eq!(seen[0], seen[1], "farm.toml and compose.yaml differ");
    let proxy = &seen[1][&format!("{name}-proxy")];
    assert_eq!(proxy["publish"][0], format!("127.0.0.1:{port}:80"));
    assert_eq!(proxy["memory"], 128 << 20);
    assert_eq!(proxy["cpus"], 1.0);
    let web = &seen[1][&format!("{name}-web-2")];
    assert_eq!((&web["pids"], &web["cpus"]), (&64.into(), &0.5.into()));
}

#[test]
fn unsupported_keys_are_refused_one_line_each_and_nothing_starts() {
    let env = Env::empty("composebad");
    let file = env.dir.join("compose.yaml");
    std::fs::write(
        &file,
        "name: cbad\nservices:\n  web:\n    image: bb\n    cap_add: [NET_ADMIN]\n    \
         ports: [\"127.0.0.1:18080:80\"]\n    deploy:\n      resources:\n        \
         reservations: {memory: 8m}\n  db:\n    image: bb\n    build: .\n\
         networks:\n  default:\n    driver_opts: {mtu: 1400}\nsecrets: {}\n",
    )
    .unwrap();
    let _up = Up {
        env: &env,
        file: file.clone(),
        nets: vec!["cbad-default".into()],
    };
    let out = env.boxctl(&["up", "-f", file.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    let mut lines: Vec<&str> = err.lines().skip(1).map(str::trim).collect();
    lines.sort();
    assert_eq!(
        lines,
        [
            "networks.default.driver_opts: not supported by boxctl",
            "secrets: not supported by boxctl",
            "services.db.build: not supported by boxctl",
            "services.web.cap_add: not supported by boxctl",
            "services.web.deploy.resources.reservations: not supported by boxctl",
        ],
        "{err}"
    );
    assert!(err.starts_with("boxctl: error: farm file "), "{err}");
    assert!(
        err.lines()
            .next()
            .unwrap()
            .ends_with("5 problems, nothing was started:"),
        "{err}"
    );
    assert!(env.ps_all().is_empty(), "an instance was made");
    let nets = env.ok(&["network", "ls"]);
    assert!(!nets.contains("cbad"), "a network was made: {nets}");
    // A single problem is a single line.
    std::fs::write(
        &file,
        "services:\n  web:\n    image: bb\n    privileged: true\n",
    )
    .unwrap();
    let err = env.fails(&["up", "-f", file.to_str().unwrap()]);
    assert!(
        err.trim_end()
            .ends_with("services.web.privileged: not supported by boxctl"),
        "{err}"
    );
}

/// `farm export FILE` of both showcase forms, then of the export itself.
#[test]
fn compose_export_parses_back_into_the_same_farm() {
    let env = Env::empty("composeexp");
    let export = |file: &Path, format: &str| {
        env.ok(&["farm", "export", "--format", format, file.to_str().unwrap()])
    };
    let toml = export(&bundles().join("webfarm/farm.toml"), "compose");
    let yaml = export(&bundles().join("webfarm/compose.yaml"), "compose");
    // The compose form says what the farm file implies (the proxy waits for web).
    assert_eq!(
        toml,
        yaml.replacen("    depends_on:\n    - web\n", "", 1),
        "the two showcase forms export differently"
    );
    let out = env.dir.join("stack.yaml");
    std::fs::write(&out, &yaml).unwrap();
    assert_eq!(
        export(&out, "compose"),
        yaml,
        "the export does not parse back to itself"
    );
    assert!(yaml.contains("version: '3.9'"), "{yaml}");
    // docker stack config parses a stack file offline (no daemon needed).
    match Command::new("docker")
        .args(["stack", "config", "-c"])
        .arg(&out)
        .output()
    {
        Ok(o) => {
            let text = String::from_utf8_lossy(&o.stdout);
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
            assert!(text.contains("replicas: 3"), "{text}");
        }
        Err(e) => eprintln!("docker not found ({e}): docker stack config skipped"),
    }
}

/// The Kubernetes export: every document's structure checked against the
/// fields used, then parsed by kubectl offline when it is installed.
#[test]
fn kube_export_is_well_formed() {
    let env = Env::empty("composekube");
    let text = env.ok(&[
        "farm",
        "export",
        "--format",
        "kube",
        bundles().join("webfarm/compose.yaml").to_str().unwrap(),
    ]);
    let docs: Vec<serde_json::Value> = text
        .split("\n---\n")
        .skip(1)
        .map(|d| serde_json::to_value(serde_yaml_doc(d)).unwrap())
        .collect();
    let kinds: Vec<&str> = docs.iter().map(|d| d["kind"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        [
            "RuntimeClass",
            "Deployment",
            "Service",
            "Deployment",
            "Service"
        ]
    );
    assert_eq!(docs[0]["apiVersion"], "node.k8s.io/v1");
    assert_eq!(docs[0]["handler"], "boxrun");
    for d in &docs[1..] {
        let name = d["metadata"]["name"].as_str().unwrap();
        assert!(
            name.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'),
            "{name}"
        );
        let spec = &d["spec"];
        if d["kind"] == "Deployment" {
            assert_eq!(d["apiVersion"], "apps/v1");
            let pod = &spec["template"]["spec"];
            assert_eq!(pod["runtimeClassName"], "boxrun");
            assert_eq!(
                spec["selector"]["matchLabels"],
                spec["template"]["metadata"]["labels"]
            );
            let c = &pod["containers"][0];
            assert!(c["name"].is_string() && c["image"].is_string(), "{c}");
        } else {
            assert_eq!(d["apiVersion"], "v1");
            assert!(spec["ports"][0]["port"].is_u64(), "{spec}");
        }
    }
    let web = &docs[1];
    assert_eq!(web["spec"]["replicas"], 3);
    let limits = &web["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"];
    assert_eq!(
        (limits["cpu"].as_str(), limits["memory"].as_str()),
        (Some("500m"), Some("32Mi"))
    );
    let proxy_svc = &docs[4]["spec"];
    assert_eq!(proxy_svc["type"], "LoadBalancer");
    assert_eq!(
        (
            proxy_svc["ports"][0]["port"].as_u64(),
            proxy_svc["ports"][0]["targetPort"].as_u64()
        ),
        (Some(8080), Some(80))
    );
    // kubectl parses the documents without a server through kustomize.
    let dir = env.dir.join("kube");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("farm.yaml"), &text).unwrap();
    std::fs::write(dir.join("kustomization.yaml"), "resources:\n- farm.yaml\n").unwrap();
    match Command::new("kubectl").arg("kustomize").arg(&dir).output() {
        Ok(o) => {
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
            let out = String::from_utf8_lossy(&o.stdout);
            assert_eq!(out.matches("runtimeClassName: boxrun").count(), 2, "{out}");
        }
        Err(e) => eprintln!("kubectl not found ({e}): kubectl kustomize skipped"),
    }
}

/// One YAML document, as a value serde_json can take.
fn serde_yaml_doc(d: &str) -> serde_yaml_ng::Value {
    serde_yaml_ng::from_str(d).unwrap()
}
