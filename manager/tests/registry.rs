//! `image pull`/`push`, `login`/`logout` against a real registry: Debian's
//! `docker-registry` on a free loopback port, run by each test with its own
//! config and storage in the test's temp root (once plain, once with TLS
//! from a CA the test makes and htpasswd basic auth). Images go in with
//! `skopeo copy` and come out with boxctl, and the reverse (boxctl push,
//! then `skopeo inspect` and `podman pull`).

mod common;

use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{sh, Env};

const USER: &str = "boxuser";
const PASSWORD: &str = "s3cret-pw";

/// A `docker-registry` child serving on 127.0.0.1; killed and its files
/// removed on drop (a failing test included).
struct Registry {
    dir: PathBuf,
    child: Child,
    port: u16,
    /// TLS and basic auth.
    secure: bool,
}

impl Registry {
    /// A plain-http registry with its files under `dir`.
    fn plain(dir: &Path) -> Registry {
        Registry::start(dir, false)
    }

    /// An https registry (certificate from a CA made here) asking for
    /// `USER`/`PASSWORD`.
    fn secure(dir: &Path) -> Registry {
        Registry::start(dir, true)
    }

    fn start(dir: &Path, secure: bool) -> Registry {
        std::fs::create_dir_all(dir).unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut config = format!(
            "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n",
            dir.join("data").display()
        );
        if secure {
            let d = dir.display();
            sh(&format!(
                "cd {d} && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
                 -keyout ca.key -out ca.crt -days 2 -subj /CN=boxctl-test-ca 2>/dev/null && \
                 openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout srv.key \
                 -out srv.csr -subj /CN=127.0.0.1 2>/dev/null && \
                 printf 'subjectAltName=IP:127.0.0.1\\nbasicConstraints=CA:FALSE\\n' > ext.cnf && \
                 openssl x509 -req -in srv.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 \
                 -extfile ext.cnf -out srv.crt 2>/dev/null && \
                 mkdir certs && cp ca.crt certs/ && htpasswd -Bbn {USER} {PASSWORD} > htpasswd"
            ));
            config.push_str(&format!(
                "  tls:\n    certificate: {d}/srv.crt\n    key: {d}/srv.key\nauth:\n  htpasswd:\n    realm: boxctl-test\n    path: {d}/htpasswd\n"
            ));
        }
        std::fs::write(dir.join("config.yml"), config).unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(dir.join("config.yml"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("registry.log")).unwrap())
            .spawn()
            .expect("run docker-registry (scripts/install-deps.sh installs it)");
        let reg = Registry {
            dir: dir.to_path_buf(),
            child,
            port,
            secure,
        };
        // Ready once it accepts connections.
        let end = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < end, "docker-registry did not listen");
            std::thread::sleep(Duration::from_millis(20));
        }
        reg
    }

    fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `skopeo copy SRC docker://HOST/REPO` with this registry's TLS and credentials.
    fn skopeo_push(&self, src: &str, repo: &str, extra: &[&str]) {
        let mut c = Command::new("skopeo");
        c.arg("copy").args(extra).args(self.skopeo_flags("dest"));
        c.arg(src).arg(format!("docker://{}/{repo}", self.host()));
        let out = c.output().unwrap();
        assert!(
            out.status.success(),
            "skopeo copy {src} {repo}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// `--PREFIX-tls-verify`/`--PREFIX-cert-dir`/`--PREFIX-creds` for skopeo
    /// (PREFIX empty for `inspect`).
    fn skopeo_flags(&self, prefix: &str) -> Vec<String> {
        let p = if prefix.is_empty() {
            String::from("--")
        } else {
            format!("--{prefix}-")
        };
        if self.secure {
            vec![
                format!("{p}cert-dir={}", self.dir.join("certs").display()),
                format!("{p}creds={USER}:{PASSWORD}"),
            ]
        } else {
            vec![format!("{p}tls-verify=false")]
        }
    }

    /// The layer digests of `repo` as the registry holds them (skopeo
    /// compresses plain layers on the way in).
    fn layers(&self, repo: &str) -> Vec<String> {
        let mut c = Command::new("skopeo");
        c.args(["inspect", "--raw"]).args(self.skopeo_flags(""));
        let out = c
            .arg(format!("docker://{}/{repo}", self.host()))
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let m: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        m["layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["digest"].as_str().unwrap().to_string())
            .collect()
    }

    /// Where the registry keeps blob `digest`.
    fn blob_data(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").unwrap();
        self.dir
            .join("data/docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// An OCI image layout under construction.
struct Layout {
    dir: PathBuf,
}

impl Layout {
    fn new(dir: &Path) -> Layout {
        std::fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
        std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
        Layout {
            dir: dir.to_path_buf(),
        }
    }

    /// Store `file` as a blob; returns (digest, size).
    fn blob(&self, file: &Path) -> (String, u64) {
        let sum = sh(&format!("sha256sum {}", file.display()));
        let hex = sum.split_whitespace().next().unwrap().to_string();
        std::fs::copy(file, self.dir.join("blobs/sha256").join(&hex)).unwrap();
        (
            format!("sha256:{hex}"),
            std::fs::metadata(file).unwrap().len(),
        )
    }

    fn json_blob(&self, v: &serde_json::Value) -> (String, u64) {
        let tmp = self.dir.join("tmp.json");
        std::fs::write(&tmp, v.to_string()).unwrap();
        let r = self.blob(&tmp);
        std::fs::remove_file(tmp).unwrap();
        r
    }

    /// An image manifest of `layers` (tar or tar.gz files) whose config runs `cmd`.
    fn manifest(&self, layers: &[&Path], cmd: &str) -> (String, u64) {
        let config = serde_json::json!({
            "architecture": "amd64", "os": "linux",
            "config": {"Cmd": ["sh", "-c", cmd], "Env": ["PATH=/bin:/sbin"], "WorkingDir": "/tmp"},
            "rootfs": {"type": "layers", "diff_ids": []}
        });
        let (cd, cs) = self.json_blob(&config);
        let layers: Vec<_> = layers
            .iter()
            .map(|l| {
                let (d, s) = self.blob(l);
                let name = l.to_string_lossy();
                let media = if name.ends_with(".gz") {
                    "application/vnd.oci.image.layer.v1.tar+gzip"
                } else if name.ends_with(".zst") {
                    "application/vnd.oci.image.layer.v1.tar+zstd"
                } else {
                    "application/vnd.oci.image.layer.v1.tar"
                };
                serde_json::json!({"mediaType": media, "digest": d, "size": s})
            })
            .collect();
        self.json_blob(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cs},
            "layers": layers
        }))
    }

    /// Tag `target` (a manifest or index of `media` type) as `tag` in index.json.
    fn tag(&self, tag: &str, target: (String, u64), media: &str) {
        let path = self.dir.join("index.json");
        let mut index: serde_json::Value = std::fs::read_to_string(&path)
            .map(|t| serde_json::from_str(&t).unwrap())
            .unwrap_or_else(|_| serde_json::json!({"schemaVersion": 2, "manifests": []}));
        index["manifests"]
            .as_array_mut()
            .unwrap()
            .push(serde_json::json!({
                "mediaType": media, "digest": target.0, "size": target.1,
                "annotations": {"org.opencontainers.image.ref.name": tag}
            }));
        std::fs::write(path, index.to_string()).unwrap();
    }

    fn src(&self, tag: &str) -> String {
        format!("oci:{}:{tag}", self.dir.display())
    }
}

const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

/// A layer holding one file `name` of `mib` MiB of random bytes (uncompressed tar).
fn random_layer(env: &Env, name: &str, mib: u32) -> PathBuf {
    let d = env.dir.join(format!("rand-{name}"));
    let t = env.dir.join(format!("{name}.tar"));
    sh(&format!(
        "mkdir -p {d} && head -c {mib}M /dev/urandom > {d}/{name} && tar -C {d} -cf {t} . && rm -r {d}",
        d = d.display(),
        t = t.display()
    ));
    t
}

const CMD: &str = "echo ran $0; ls /opq; ls /etc | grep -c old.txt; true";

/// Run image `image` and check the layers and whiteouts landed.
fn check_run(env: &Env, image: &str) {
    let out = env.ok(&["run", "--rm", image]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines, ["ran sh", "b.txt", "0"], "image {image}: {out}");
}

/// Bytes allocated by the store's blobs.
fn blob_bytes(env: &Env) -> u64 {
    sh(&format!(
        "du -s --block-size=1 {}",
        env.root.join("blobs/sha256").display()
    ))
    .split_whitespace()
    .next()
    .unwrap()
    .parse()
    .unwrap()
}

/// Every stored blob hashes to its name; returns their names.
fn assert_blobs_complete(env: &Env) -> Vec<String> {
    let dir = env.root.join("blobs/sha256");
    let mut names = Vec::new();
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        let sum = sh(&format!("sha256sum {}", p.display()));
        assert_eq!(
            sum.split_whitespace().next().unwrap(),
            name,
            "incomplete blob {}",
            p.display()
        );
        names.push(name);
    }
    names
}

/// The one `boxctl: error:` line of `stderr`, after progress lines only.
fn error_line(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr);
    let lines: Vec<&str> = text.lines().collect();
    let (last, progress) = lines.split_last().expect("no error output");
    assert!(last.starts_with("boxctl: error: "), "{text}");
    assert!(
        progress.iter().all(|l| l.starts_with("pulling ")
            || l.contains(": already present")
            || l.contains(": done (")),
        "{text}"
    );
    last.to_string()
}

fn tmp_files(env: &Env) -> Vec<String> {
    std::fs::read_dir(env.root.join("blobs/tmp"))
        .map(|rd| {
            rd.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn plain_registry_pull_push_dedup_and_failures() {
    let env = Env::new("reg-plain");
    let reg = Registry::plain(&env.dir.join("registry"));
    let host = reg.host();
    let (base, top) = common::whiteout_layers(&env, "");
    let layout = Layout::new(&env.dir.join("layout"));
    let m = layout.manifest(&[&base, &top], CMD);
    layout.tag("v1", m, MANIFEST);

    // OCI manifest, gzip + plain layers, whiteouts: pulled and run.
    reg.skopeo_push(&layout.src("v1"), "tests/bb:v1", &[]);
    let e = env.fails(&["image", "pull", &format!("{host}/tests/bb:v1")]);
    assert!(e.contains("--insecure"), "{e}");
    let out = env.boxctl(&[
        "image",
        "pull",
        "--insecure",
        &format!("{host}/tests/bb:v1"),
    ]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "bb-v1\n");
    let progress = String::from_utf8_lossy(&out.stderr);
    assert!(
        progress.contains("pulling ") && progress.contains(": done ("),
        "{progress}"
    );
    check_run(&env, "bb-v1");
    let inspect: serde_json::Value =
        serde_json::from_str(&env.ok(&["image", "inspect", "bb-v1"])).unwrap();
    assert_eq!(inspect[0]["source"], "registry", "{inspect}");
    assert!(env.root.join("images/bb-v1/origin.json").is_file());

    // Docker v2 schema 2 of the same image: every blob already stored.
    reg.skopeo_push(
        &layout.src("v1"),
        "tests/bb-docker:v1",
        &["--format", "v2s2"],
    );
    let before = blob_bytes(&env);
    let out = env.boxctl(&[
        "image",
        "pull",
        "--insecure",
        &format!("{host}/tests/bb-docker:v1"),
        "bbdocker",
    ]);
    assert!(out.status.success(), "{out:?}");
    let progress = String::from_utf8_lossy(&out.stderr);
    // config and both layers
    assert_eq!(progress.matches("already present").count(), 3, "{progress}");
    check_run(&env, "bbdocker");

    // Shared base: a second image on it stores only its own layer.
    let extra = random_layer(&env, "extra", 4);
    let m2 = layout.manifest(&[&base, &top, &extra], CMD);
    layout.tag("v2", m2, MANIFEST);
    reg.skopeo_push(&layout.src("v2"), "tests/bb:v2", &[]);
    let mid = blob_bytes(&env);
    env.ok(&[
        "image",
        "pull",
        "--insecure",
        &format!("{host}/tests/bb:v2"),
    ]);
    let after = blob_bytes(&env);
    let extra_size = std::fs::metadata(&extra).unwrap().len();
    let base_size = std::fs::metadata(&base).unwrap().len();
    eprintln!(
        "dedup: blobs on disk {before} B after image 1, {mid} B after its docker twin, {after} B after image 2 \
         (its own layer {extra_size} B, shared base {base_size} B)"
    );
    assert_eq!(before, mid, "the docker twin stored blobs again");
    let grew = after - mid;
    assert!(
        grew >= extra_size && grew < extra_size + base_size,
        "second image grew the store by {grew} B (own layer {extra_size} B, base {base_size} B)"
    );
    check_run(&env, "bb-v2");

    // zstd layers (the base recompressed: a layer of its own).
    let zst = env.dir.join("base.tar.zst");
    sh(&format!(
        "gzip -dc {} | zstd -q -o {}",
        base.display(),
        zst.display()
    ));
    let mz = layout.manifest(&[&zst, &top], CMD);
    layout.tag("zstd", mz, MANIFEST);
    reg.skopeo_push(&layout.src("zstd"), "tests/bb-zstd:v1", &[]);
    let raw = sh(&format!(
        "skopeo inspect --raw --tls-verify=false docker://{host}/tests/bb-zstd:v1"
    ));
    assert!(raw.contains("tar+zstd"), "skopeo did not push zstd: {raw}");
    env.ok(&[
        "image",
        "pull",
        "--insecure",
        &format!("{host}/tests/bb-zstd:v1"),
        "bbzstd",
    ]);
    check_run(&env, "bbzstd");

    // A missing tag: one clear line, nothing made.
    let e = env.fails(&[
        "image",
        "pull",
        "--insecure",
        &format!("{host}/tests/bb:nope"),
    ]);
    assert!(e.contains("no image") && e.contains("bb:nope"), "{e}");
    assert!(!env.root.join("images/bb-nope").exists());

    // A corrupted blob is refused and nothing of it stays.
    let bad = random_layer(&env, "bad", 1);
    let m3 = layout.manifest(&[&base, &top, &bad], CMD);
    layout.tag("bad", m3, MANIFEST);
    reg.skopeo_push(&layout.src("bad"), "tests/bad:1", &[]);
    let bad_digest = reg.layers("tests/bad:1").pop().unwrap();
    let data = reg.blob_data(&bad_digest);
    sh(&format!(
        "printf 'XXXX' | dd of={} bs=1 seek=100000 conv=notrunc 2>/dev/null",
        data.display()
    ));
    let out = env.boxctl(&[
        "image",
        "pull",
        "--insecure",
        &format!("{host}/tests/bad:1"),
        "bad",
    ]);
    assert!(!out.status.success());
    let e = error_line(&out.stderr);
    assert!(
        e.contains(&bad_digest) && e.contains("Invalid digest"),
        "{e}"
    );
    assert!(!env.root.join("images/bad").exists());
    let stored = assert_blobs_complete(&env);
    assert!(
        !stored.iter().any(|n| bad_digest.ends_with(n.as_str())),
        "corrupt blob kept"
    );
    assert!(
        tmp_files(&env).is_empty(),
        "temp files left: {:?}",
        tmp_files(&env)
    );
    env.assert_no_leaks(&[]);
}

#[test]
fn plain_registry_push_round_trip_and_manifest_list() {
    let env = Env::new("reg-push");
    let reg = Registry::plain(&env.dir.join("registry"));
    let host = reg.host();

    // boxctl push, then skopeo inspect and podman pull see the image.
    let reference = format!("{host}/tests/pushed:1");
    env.ok(&["image", "push", "--insecure", "bb", &reference]);
    let info: serde_json::Value = serde_json::from_str(&sh(&format!(
        "skopeo inspect --tls-verify=false docker://{reference}"
    )))
    .unwrap();
    assert_eq!(info["Os"], "linux", "{info}");
    assert_eq!(info["Layers"].as_array().unwrap().len(), 1, "{info}");
    let podman = PodmanRoot::new(&env.dir.join("podman"));
    let out = podman.run(&["pull", "--tls-verify=false", &reference]);
    assert!(out.status.success(), "podman pull: {out:?}");
    let out = podman.run(&[
        "image",
        "inspect",
        "--format",
        "{{.Os}}/{{.Architecture}}",
        &reference,
    ]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "linux/amd64",
        "{out:?}"
    );

    // And back into boxctl: what boxctl pushed runs after a pull.
    env.ok(&["image", "pull", "--insecure", &reference, "roundtrip"]);
    let out = env.ok(&["run", "--rm", "roundtrip", "ls", "/bin/busybox"]);
    assert_eq!(out.trim(), "/bin/busybox");
    env.ok(&["image", "tag", "roundtrip", "roundtrip2"]);
    let out = env.ok(&["run", "--rm", "roundtrip2", "echo", "tagged"]);
    assert_eq!(out.trim(), "tagged");

    // A manifest list: linux/amd64 is the one pulled.
    let (base, top) = common::whiteout_layers(&env, "");
    let layout = Layout::new(&env.dir.join("layout"));
    let amd = layout.manifest(&[&base, &top], CMD);
    let arm = layout.manifest(&[&base, &top], "echo wrong platform");
    let list = layout.json_blob(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {"mediaType": MANIFEST, "digest": arm.0, "size": arm.1,
             "platform": {"architecture": "arm64", "os": "linux"}},
            {"mediaType": MANIFEST, "digest": amd.0, "size": amd.1,
             "platform": {"architecture": "amd64", "os": "linux"}}
        ]
    }));
    layout.tag("multi", list, "application/vnd.oci.image.index.v1+json");
    reg.skopeo_push(&layout.src("multi"), "tests/multi:1", &["--all"]);
    env.ok(&[
        "image",
        "pull",
        "--insecure",
        &format!("{host}/tests/multi:1"),
    ]);
    check_run(&env, "multi-1");
    env.assert_no_leaks(&[]);
}

#[test]
fn killed_pull_leaves_only_complete_blobs() {
    let env = Env::new("reg-kill");
    let reg = Registry::plain(&env.dir.join("registry"));
    let host = reg.host();
    let (base, top) = common::whiteout_layers(&env, "");
    let big = random_layer(&env, "big", 64);
    let layout = Layout::new(&env.dir.join("layout"));
    let m = layout.manifest(&[&base, &top, &big], CMD);
    layout.tag("big", m, MANIFEST);
    reg.skopeo_push(&layout.src("big"), "tests/big:1", &[]);
    let big_digest = reg.layers("tests/big:1").pop().unwrap();
    let big_hex = big_digest.strip_prefix("sha256:").unwrap().to_string();

    // Killed with -9 as soon as it starts on the big layer.
    let mut child = Command::new(env!("CARGO_BIN_EXE_boxctl"))
        .arg("--root")
        .arg(&env.root)
        .args([
            "image",
            "pull",
            "--insecure",
            &format!("{host}/tests/big:1"),
            "big",
        ])
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let err = child.stderr.take().unwrap();
    let mut seen = String::new();
    for line in BufReader::new(err).lines().map_while(Result::ok) {
        seen.push_str(&line);
        seen.push('\n');
        if line.starts_with(&format!("pulling {}", &big_hex[..12])) {
            child.kill().unwrap();
            break;
        }
    }
    let st = child.wait().unwrap();
    assert!(!st.success(), "the pull finished before the kill: {seen}");
    let stored = assert_blobs_complete(&env);
    assert!(
        !stored.contains(&big_hex),
        "the big layer completed before the kill"
    );
    assert!(!env.root.join("images/big").exists());

    // The next command cleans the partial download and finishes the pull.
    env.ok(&[
        "image",
        "pull",
        "--insecure",
        &format!("{host}/tests/big:1"),
        "big",
    ]);
    assert!(
        tmp_files(&env).is_empty(),
        "temp files left: {:?}",
        tmp_files(&env)
    );
    assert!(assert_blobs_complete(&env).contains(&big_hex));
    check_run(&env, "big");
    env.assert_no_leaks(&[]);
}

#[test]
fn tls_registry_with_basic_auth() {
    let env = Env::new("reg-tls");
    let reg = Registry::secure(&env.dir.join("registry"));
    let host = reg.host();
    let (base, top) = common::whiteout_layers(&env, "");
    let layout = Layout::new(&env.dir.join("layout"));
    let m = layout.manifest(&[&base, &top], CMD);
    layout.tag("v1", m, MANIFEST);
    reg.skopeo_push(&layout.src("v1"), "tests/bb:v1", &[]);
    let reference = format!("{host}/tests/bb:v1");

    // The test CA is unknown until put in the store's certs.d.
    let e = env.fails(&["image", "pull", &reference]);
    assert!(e.contains("certs.d"), "{e}");
    let certs = env.root.join("certs.d").join(&host);
    std::fs::create_dir_all(&certs).unwrap();
    std::fs::copy(reg.dir.join("ca.crt"), certs.join("ca.crt")).unwrap();

    // No credentials, then bad ones: one clear line each.
    let e = env.fails(&["image", "pull", &reference]);
    assert!(
        e.contains("needs credentials") && e.contains("boxctl login"),
        "{e}"
    );
    let e = env.fails(&["login", "-u", USER, "-p", "wrong", &host]);
    assert!(e.contains("refused the credentials of user boxuser"), "{e}");
    assert!(!env.root.join("auth.json").exists());

    // Login stores them 0600 in docker's format; pull and push use them.
    let login = Command::new(env!("CARGO_BIN_EXE_boxctl"))
        .arg("--root")
        .arg(&env.root)
        .args(["login", "-u", USER, "--password-stdin", &host])
        .stdin(Stdio::piped())
        .output_with_input(format!("{PASSWORD}\n"));
    assert!(login.status.success(), "{login:?}");
    use std::os::unix::fs::PermissionsExt;
    let auth = env.root.join("auth.json");
    let mode = std::fs::metadata(&auth).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&auth).unwrap()).unwrap();
    assert!(v["auths"][&host]["auth"].is_string(), "{v}");
    env.ok(&["image", "pull", &reference]);
    check_run(&env, "bb-v1");
    let pushed = format!("{host}/tests/pushed:1");
    env.ok(&["image", "push", "bb-v1", &pushed]);
    let mut c = Command::new("skopeo");
    c.arg("inspect")
        .args(reg.skopeo_flags(""))
        .arg(format!("docker://{pushed}"));
    let out = c.output().unwrap();
    assert!(out.status.success(), "{out:?}");

    // Stale credentials: one clear line.
    let stale = serde_json::json!({"auths": {&host: {"auth": "Ym94dXNlcjpub3BlCg=="}}});
    std::fs::write(&auth, stale.to_string()).unwrap();
    let e = env.fails(&["image", "pull", &reference, "stale"]);
    assert!(e.contains("refused the credentials"), "{e}");

    // Logout forgets them.
    env.ok(&["logout", &host]);
    let e = env.fails(&["image", "pull", &reference, "again"]);
    assert!(e.contains("needs credentials"), "{e}");
    let e = env.fails(&["logout", &host]);
    assert!(e.contains("not logged in"), "{e}");
    env.assert_no_leaks(&[]);
}

/// A podman with its own storage (vfs) under `dir`, removed on drop.
struct PodmanRoot {
    dir: PathBuf,
}

impl PodmanRoot {
    fn new(dir: &Path) -> PodmanRoot {
        std::fs::create_dir_all(dir).unwrap();
        PodmanRoot {
            dir: dir.to_path_buf(),
        }
    }

    fn run(&self, args: &[&str]) -> std::process::Output {
        Command::new("podman")
            .arg("--root")
            .arg(self.dir.join("root"))
            .arg("--runroot")
            .arg(self.dir.join("run"))
            .arg("--tmpdir")
            .arg(self.dir.join("tmp"))
            .args(["--storage-driver", "vfs", "--events-backend", "none"])
            .args(args)
            .output()
            .unwrap()
    }
}

impl Drop for PodmanRoot {
    fn drop(&mut self) {
        let _ = self.run(&["rmi", "-a", "-f"]);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `Command::output` with `input` written to its stdin.
trait OutputWithInput {
    fn output_with_input(&mut self, input: String) -> std::process::Output;
}

impl OutputWithInput for Command {
    fn output_with_input(&mut self, input: String) -> std::process::Output {
        use std::io::Write;
        let mut child = self
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    }
}
