//! Image import from every supported source, with OCI layers and whiteouts.

mod common;

use std::path::Path;

use common::{sh, Env};

/// Store `data` as a blob of the layout at `dir`; returns (digest, size).
fn blob(dir: &Path, file: &Path) -> (String, u64) {
    let sum = sh(&format!("sha256sum {}", file.display()));
    let hex = sum.split_whitespace().next().unwrap().to_string();
    let dst = dir.join("blobs/sha256").join(&hex);
    std::fs::create_dir_all(dst.parent().unwrap()).unwrap();
    std::fs::copy(file, &dst).unwrap();
    (
        format!("sha256:{hex}"),
        std::fs::metadata(file).unwrap().len(),
    )
}

const CMD: &str = "echo $GREETING from $(pwd); ls /opq; cat /etc/new.txt; ls /etc";

fn config_json() -> String {
    serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "config": {"Cmd": ["sh", "-c", CMD], "Env": ["PATH=/bin", "GREETING=hi"], "WorkingDir": "/tmp"},
        "rootfs": {"type": "layers", "diff_ids": []}
    })
    .to_string()
}

fn check_run(env: &Env, image: &str, name: &str) {
    let out = env.boxctl(&["run", "--name", name, image]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "hi from /tmp", "{text}");
    assert_eq!(lines[1], "b.txt", "opaque whiteout not applied: {text}");
    assert_eq!(lines[2], "new-file", "{text}");
    assert!(!text.contains("old.txt"), "whiteout not applied: {text}");
    env.ok(&["rm", name]);
}

#[test]
fn oci_layout_directory_and_archive() {
    let env = Env::new("oci");
    let (t1, t2) = common::whiteout_layers(&env, "&& echo new-file > $L2/etc/new.txt");
    let layout = env.dir.join("layout");
    std::fs::create_dir_all(&layout).unwrap();
    std::fs::write(
        layout.join("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
    let cfg = env.dir.join("config.json");
    std::fs::write(&cfg, config_json()).unwrap();
    let (cd, cs) = blob(&layout, &cfg);
    let (d1, s1) = blob(&layout, &t1);
    let (d2, s2) = blob(&layout, &t2);
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cs},
        "layers": [
            {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": d1, "size": s1},
            {"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": d2, "size": s2}
        ]
    });
    let mf = env.dir.join("manifest.json");
    std::fs::write(&mf, manifest.to_string()).unwrap();
    let (md, ms) = blob(&layout, &mf);
    let index = serde_json::json!({"schemaVersion": 2, "manifests": [
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md, "size": ms,
         "platform": {"architecture": "amd64", "os": "linux"}}]});
    std::fs::write(layout.join("index.json"), index.to_string()).unwrap();

    env.ok(&["image", "import", layout.to_str().unwrap(), "ocidir"]);
    check_run(&env, "ocidir", "o1");

    let archive = env.dir.join("oci.tar");
    sh(&format!(
        "tar -C {} -cf {} .",
        layout.display(),
        archive.display()
    ));
    env.ok(&["image", "import", archive.to_str().unwrap(), "ociarch"]);
    check_run(&env, "ociarch", "o2");
    let ls = env.ok(&["image", "ls"]);
    assert!(
        ls.contains("ocidir") && ls.contains("ociarch") && ls.contains("oci"),
        "{ls}"
    );

    // A digest that tries to leave the layout is refused.
    let evil = env.dir.join("evil");
    sh(&format!("cp -a {} {}", layout.display(), evil.display()));
    let idx = serde_json::json!({"schemaVersion": 2, "manifests": [
        {"digest": "sha256:../../../../etc/passwd", "size": 1}]});
    std::fs::write(evil.join("index.json"), idx.to_string()).unwrap();
    let e = env.fails(&["image", "import", evil.to_str().unwrap(), "evil"]);
    assert!(e.contains("digest"), "{e}");
    assert!(!env.root.join("images/evil").exists());
    env.assert_no_leaks(&[]);
}

#[test]
fn docker_archive_tarball_and_raw_images() {
    let env = Env::new("dockerarch");
    let (t1, t2) = common::whiteout_layers(&env, "&& echo new-file > $L2/etc/new.txt");
    let d = env.dir.join("docker");
    std::fs::create_dir_all(d.join("aaa")).unwrap();
    std::fs::create_dir_all(d.join("bbb")).unwrap();
    sh(&format!(
        "gzip -dc {} > {}",
        t1.display(),
        d.join("aaa/layer.tar").display()
    ));
    std::fs::copy(&t2, d.join("bbb/layer.tar")).unwrap();
    std::fs::write(d.join("cfg.json"), config_json()).unwrap();
    let manifest = serde_json::json!([{"Config": "cfg.json", "RepoTags": ["demo:latest"],
        "Layers": ["aaa/layer.tar", "bbb/layer.tar"]}]);
    std::fs::write(d.join("manifest.json"), manifest.to_string()).unwrap();
    let archive = env.dir.join("docker.tar");
    sh(&format!(
        "tar -C {} -cf {} .",
        d.display(),
        archive.display()
    ));
    env.ok(&["image", "import", archive.to_str().unwrap(), "dock"]);
    check_run(&env, "dock", "d1");

    // A plain rootfs tarball (gzip).
    let tgz = env.dir.join("rootfs.tar.gz");
    sh(&format!(
        "tar -C {} -czf {} .",
        env.dir.join("rootfs-src").display(),
        tgz.display()
    ));
    env.ok(&["image", "import", tgz.to_str().unwrap(), "tgz"]);
    let out = env.ok(&[
        "run",
        "--name",
        "t1",
        "tgz",
        "sh",
        "-c",
        "echo from-tarball",
    ]);
    assert_eq!(out.trim(), "from-tarball");
    env.ok(&["rm", "t1"]);

    // A raw ext4 disk image.
    let raw = env.root.join("images/bb/disk.img");
    env.ok(&["image", "import", raw.to_str().unwrap(), "raw"]);
    let img: Vec<serde_json::Value> =
        serde_json::from_str(&env.ok(&["image", "ls", "--json"])).unwrap();
    let r = img.iter().find(|i| i["name"] == "raw").unwrap();
    assert_eq!(r["source"], "raw");
    let out = env.ok(&["run", "--name", "r1", "raw", "echo", "from-raw"]);
    assert_eq!(out.trim(), "from-raw");

    // Errors: name taken, unknown format, image in use; rm when free.
    let e = env.fails(&["image", "import", raw.to_str().unwrap(), "raw"]);
    assert!(e.contains("already exists"), "{e}");
    let junk = env.dir.join("junk.bin");
    std::fs::write(&junk, vec![7u8; 4096]).unwrap();
    env.fails(&["image", "import", junk.to_str().unwrap(), "junk"]);
    env.fails(&["image", "rm", "raw"]);
    env.ok(&["rm", "r1"]);
    env.ok(&["image", "rm", "raw", "tgz", "dock"]);
    let ls = env.ok(&["image", "ls"]);
    assert!(!ls.contains("raw") && !ls.contains("tgz"), "{ls}");
    let leftovers: Vec<_> = std::fs::read_dir(env.root.join("images"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        leftovers,
        ["bb"],
        "temporary directories left: {leftovers:?}"
    );
    env.assert_no_leaks(&[]);
}

#[test]
fn logs_are_capped_and_rotated() {
    let env = Env::new("logs");
    // BOXCTL_LOG_MAX is 64 KiB in the tests: 200 KiB of output rotates.
    let out = env.boxctl(&["run", "--name", "chatty", "bb", "sh", "-c",
        "i=0; while [ $i -lt 2000 ]; do echo line-$i-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx; i=$((i+1)); done"]);
    assert!(out.status.success());
    let id = env.inspect("chatty")["id"].as_str().unwrap().to_string();
    let dir = env.root.join("instances").join(&id);
    let cur = std::fs::metadata(dir.join("container.log")).unwrap().len();
    let old = std::fs::metadata(dir.join("container.log.1"))
        .unwrap()
        .len();
    assert!(cur <= 65536 && old <= 65536, "{cur} {old}");
    let tail = env.ok(&["logs", "--tail", "2", "chatty"]);
    let lines: Vec<&str> = tail.lines().collect();
    assert_eq!(lines.len(), 2);
    assert!(lines[1].starts_with("line-1999-"), "{tail}");
    env.ok(&["rm", "chatty"]);
    env.assert_no_leaks(&[id]);
}
