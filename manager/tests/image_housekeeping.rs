//! Image housekeeping (root required): export to docker-archive, OCI
//! archive and OCI layout checked with skopeo and podman, a `podman save`
//! archive imported back, history, inspect and prune.

mod common;

use std::process::Command;

use common::Env;

/// A podman image removed on drop.
struct PodmanImage(String);

impl Drop for PodmanImage {
    fn drop(&mut self) {
        let _ = Command::new("podman").args(["rmi", "-f", &self.0]).output();
    }
}

fn run(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{cmd} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn skopeo_layers(transport: &str) -> Vec<serde_json::Value> {
    let v: serde_json::Value =
        serde_json::from_str(&run("skopeo", &["inspect", transport])).unwrap();
    assert_eq!(v["Os"], "linux", "{v}");
    v["Layers"].as_array().unwrap().clone()
}

#[test]
fn export_goes_to_podman_and_skopeo_and_a_podman_save_comes_back() {
    let env = Env::new("hk-export");
    let src = env.dir.join("rootfs-src");
    let marker = format!("boxctl-export-{}", std::process::id());
    std::fs::write(src.join("marker"), &marker).unwrap();
    // Named for this process: podman's image store is shared with the host.
    let mk = format!("bxexport{}", std::process::id());
    env.ok(&["image", "import", src.to_str().unwrap(), &mk]);
    let out = env.dir.join("out");
    std::fs::create_dir(&out).unwrap();
    let path = |n: &str| out.join(n).to_str().unwrap().to_string();

    env.ok(&[
        "image",
        "export",
        "--format",
        "oci-dir",
        "-o",
        &path("dir"),
        &mk,
    ]);
    assert_eq!(skopeo_layers(&format!("oci:{}", path("dir"))).len(), 1);
    env.ok(&[
        "image",
        "export",
        "--format",
        "oci-archive",
        "-o",
        &path("oci.tar"),
        &mk,
    ]);
    assert_eq!(
        skopeo_layers(&format!("oci-archive:{}", path("oci.tar"))).len(),
        1
    );
    let reference = env.ok(&["image", "export", "-o", &path("docker.tar"), &mk]);
    assert_eq!(reference.trim(), format!("{mk}:latest"));
    assert_eq!(
        skopeo_layers(&format!("docker-archive:{}", path("docker.tar"))).len(),
        1
    );

    // podman loads the docker archive; its own `save` comes back into boxctl.
    let name = format!("localhost/{mk}:latest");
    let _guard = PodmanImage(name.clone());
    let loaded = run("podman", &["load", "-i", &path("docker.tar")]);
    assert!(loaded.contains(&name), "{loaded}");
    run("podman", &["save", "-o", &path("saved.tar"), &name]);
    env.ok(&["image", "import", &path("saved.tar"), "back"]);
    let v: serde_json::Value =
        serde_json::from_str(&env.ok(&["image", "inspect", "back"])).unwrap();
    assert_eq!(v[0]["source"], "docker-archive");
    assert_eq!(v[0]["layers"].as_array().unwrap().len(), 1, "{v}");
    assert!(v[0]["oci_config"]["rootfs"].is_object(), "{v}");
    assert!(v[0]["size_on_disk"].as_u64().unwrap() > 0);
    // The files made the whole round trip.
    let got = env.ok(&["run", "--rm", "back", "cat", "/marker"]);
    assert_eq!(got, marker);
    // The OCI layout imports back too.
    env.ok(&["image", "import", &path("dir"), "fromdir"]);

    // History: the import record on top of the exported image's history.
    let h: serde_json::Value =
        serde_json::from_str(&env.ok(&["image", "history", "--json", "back"])).unwrap();
    let by: Vec<_> = h
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["created_by"].as_str().unwrap().to_string())
        .collect();
    assert!(
        by[0].starts_with("boxctl image import") && by[0].contains("docker-archive"),
        "{by:?}"
    );
    assert!(
        by.iter()
            .any(|b| b.contains(&format!("boxctl image export {mk}"))),
        "{by:?}"
    );
    let table = env.ok(&["image", "history", &mk]);
    assert!(table.starts_with("CREATED"), "{table}");
    assert!(table.contains("boxctl image import"), "{table}");
    env.fails(&[
        "image",
        "export",
        "--format",
        "tarball",
        "-o",
        &path("x"),
        &mk,
    ]);
    env.fails(&[
        "image",
        "export",
        "--format",
        "oci-dir",
        "-o",
        &path("dir"),
        &mk,
    ]);
    env.assert_no_leaks(&[]);
}

#[test]
fn image_prune_removes_dangling_then_unused_images() {
    let env = Env::new("hk-prune");
    let src = env.dir.join("rootfs-src");
    for n in ["used", "spare", "broken"] {
        env.ok(&["image", "import", "--size", "64m", src.to_str().unwrap(), n]);
    }
    env.ok(&["create", "--name", "c", "used"]);
    // A dangling image: its disk is gone (a lost storage pool, a removed file).
    let disk = env.root.join("images/broken/disk.img");
    if let Ok(target) = std::fs::read_link(&disk) {
        std::fs::remove_file(target).unwrap();
    } else {
        std::fs::remove_file(&disk).unwrap();
    }
    env.fails(&["image", "prune"]);
    let out = env.ok(&["image", "prune", "-f"]);
    assert!(out.contains("broken") && !out.contains("spare"), "{out}");
    let out = env.ok(&["image", "prune", "-a", "-f"]);
    assert!(out.contains("spare") && !out.contains("used"), "{out}");
    let ls = env.ok(&["image", "ls"]);
    let names: Vec<_> = ls
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(names, ["used"], "{ls}");
    env.ok(&["rm", "c"]);
    // Every pool file went with its image.
    let pool_images = env.root.join("pool/mnt/images");
    if pool_images.exists() {
        assert_eq!(std::fs::read_dir(pool_images).unwrap().count(), 1);
    }
}
