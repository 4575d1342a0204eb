//! Case 6: boxctl, the manager, driven through its CLI.
//!
//! - 6a time to a running instance (`boxctl run -d`) vs image size and the way
//!   the instance disk is made: copy (boxctl root on the host's ext4) or
//!   reflink (boxctl root on an XFS file system on a loop device made here);
//! - 6b `boxctl ps` with 1,000 instances in the instance file;
//! - 6c `boxctl run` (foreground, /bin/true) over each runtime vs that
//!   runtime's bare `run`.

use super::{Bench, CaseDef, Variant, RT_BOXRUN, RT_CRUN, RT_RUNC};
use crate::report::{CaseReport, Summary};
use crate::spec::Step;
use serde_json::Value;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

type Error = Box<dyn std::error::Error>;

fn run_cmd(argv: &[&str]) -> Result<(), Error> {
    let (prog, args) = argv.split_first().ok_or("empty command")?;
    let out = Command::new(prog)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("spawn {prog}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "`{}` failed: {}: {}",
            argv.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )
        .into());
    }
    Ok(())
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

/// Image sizes of 6a, MiB.
fn sizes(quick: bool) -> Vec<u64> {
    if quick {
        vec![100]
    } else {
        vec![100, 1024, 4096]
    }
}

fn size_label(mib: u64) -> String {
    if mib >= 1024 {
        format!("{} GiB", mib / 1024)
    } else {
        format!("{mib} MiB")
    }
}

/// Write `len` bytes of incompressible, non-zero pseudo-random data (mke2fs
/// turns zero blocks into holes, which would make every copy free).
fn write_filler(path: &Path, len: u64) -> Result<(), Error> {
    let mut f = std::io::BufWriter::with_capacity(
        1 << 20,
        fs::File::create(path).map_err(|e| format!("create {}: {e}", path.display()))?,
    );
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15 ^ len;
    let mut buf = vec![0u8; 1 << 20];
    let mut left = len;
    while left > 0 {
        for chunk in buf.chunks_exact_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            chunk.copy_from_slice(&x.to_le_bytes());
        }
        let n = left.min(buf.len() as u64) as usize;
        f.write_all(&buf[..n])
            .map_err(|e| format!("write {}: {e}", path.display()))?;
        left -= n as u64;
    }
    f.flush()
        .map_err(|e| format!("write {}: {e}", path.display()))?;
    Ok(())
}

impl Bench {
    fn boxctl_cmd(&self, root: &Path, rt: &Path, rest: &[&str]) -> Vec<String> {
        let mut a = vec![
            s(&self.o.boxctl),
            "--root".into(),
            s(root),
            "--runtime".into(),
            s(rt),
        ];
        a.extend(rest.iter().map(|x| x.to_string()));
        a
    }

    /// A boxctl root holding the busybox rootfs imported as image `bb`
    /// (plus `data_dir`, when given, as image `img`).
    fn boxctl_root(
        &self,
        root: &Path,
        image_size: &str,
        data_dir: Option<&Path>,
    ) -> Result<(), Error> {
        fs::create_dir_all(root).map_err(|e| format!("create {}: {e}", root.display()))?;
        // For run.sh's cleanup trap.
        fs::write(
            root.with_extension("boxctl"),
            format!("bin={}\n", self.o.boxctl.display()),
        )?;
        let rt = &self.runtimes[RT_RUNC].bin;
        let (src, name) = match data_dir {
            Some(d) => (d.to_owned(), "img"),
            None => (self.rootfs.clone(), "bb"),
        };
        let argv = self.boxctl_cmd(
            root,
            rt,
            &["image", "import", "--size", image_size, &s(&src), name],
        );
        run_cmd(&argv.iter().map(String::as_str).collect::<Vec<_>>())
    }

    fn boxctl_variant(&self, key: &str, label: String, rt: Option<usize>, root: &Path) -> Variant {
        let rt_bin = rt.map(|i| self.runtimes[i].bin.clone()).unwrap_or_default();
        Variant {
            key: key.to_owned(),
            label,
            rt,
            root: root.to_owned(),
            bundle: PathBuf::new(),
            pre: vec![],
            env: vec![],
            on_fail: Some(vec![self.boxctl_cmd(root, &rt_bin, &["rm", "-f", "{id}"])]),
        }
    }

    /// The runtime boxctl drives in 6a/6b: boxrun when it works, else runc.
    fn manager_runtime(&self) -> usize {
        if self.runtimes[RT_BOXRUN].missing.is_none() {
            RT_BOXRUN
        } else {
            RT_RUNC
        }
    }

    fn case6c(&mut self) -> Result<CaseReport, Error> {
        let dir = self.o.work.join("boxctl");
        let bare = self.run_variants(6)?;
        let boxctl = self.o.boxctl.clone();
        let mut variants = Vec::new();
        for (i, rt) in [(RT_BOXRUN, "boxrun"), (RT_RUNC, "runc"), (RT_CRUN, "crun")] {
            if self.runtimes[i].missing.is_some() {
                continue;
            }
            let root = dir.join(format!("6c-{rt}"));
            self.boxctl_root(&root, "64m", None)?;
            let label = format!("boxctl → {}", self.runtimes[i].label);
            variants.push(self.boxctl_variant(&format!("boxctl-{rt}"), label, Some(i), &root));
        }
        variants.extend(bare);
        let def = CaseDef {
            number: 6,
            title: "6c — `boxctl run` (foreground, /bin/true, 64 MiB busybox image) vs the runtime's bare `run`".into(),
            notes: vec![
                "boxctl → X: `boxctl --runtime X run --name ID bb /bin/true` (copy the image disk, mount it, write the bundle, spawn the monitor, run, follow the output to the end); then `boxctl rm ID`, timed separately. Bare X: `X run` of the case 1 bundle.".into(),
                "crun, bare or under boxctl, runs inside the private mount namespace described in case 1 (boxctl's mounts stay inside it).".into(),
                "CPU of the boxctl rows covers boxctl's own process only: the instance's monitor, and the runtime and container under it, are detached from boxctl and not in its rusage.".into(),
            ],
            variants,
            rounds: self.rounds(8, 2),
            iters: self.iters(3, 2),
            warmup: 1,
            steps: Box::new(move |v, rt| {
                if v.on_fail.is_some() {
                    let mut a = vec![
                        s(&boxctl),
                        "--root".into(),
                        s(&v.root),
                        "--runtime".into(),
                        rt.first().cloned().unwrap_or_default(),
                    ];
                    let mut run = a.clone();
                    // --net none: the cost measured is the instance's, not the default network's.
                    run.extend(
                        ["run", "--net", "none", "--name", "{id}", "bb", "/bin/true"].map(String::from),
                    );
                    a.extend(["rm", "{id}"].map(String::from));
                    vec![
                        Step::Timed {
                            label: "run".into(),
                            argv: run,
                        },
                        Step::Timed {
                            label: "rm".into(),
                            argv: a,
                        },
                    ]
                } else {
                    vec![Step::Timed {
                        label: "run".into(),
                        argv: super::rt_cmd(rt, v, &["run", "-b", &s(&v.bundle), "{id}"]),
                    }]
                }
            }),
        };
        let run = self.run_case(&def);
        let mut rep = self.report(&def, &run);
        // The ratio column compares with bare crun; the overhead over each
        // runtime's own bare run is what this case is about.
        let med = |key: &str, f: fn(&crate::spec::Sample) -> f64| {
            run.raw
                .get(&(key.to_owned(), "run".to_owned()))
                .and_then(|v| Summary::of(&v.iter().map(f).collect::<Vec<_>>()))
                .map(|x| x.median)
        };
        let mut extra = vec![
            String::new(),
            "| runtime | boxctl run − bare run, median wall |".into(),
            "|---|---:|".into(),
        ];
        for rt in ["boxrun", "runc", "crun"] {
            let bx = format!("boxctl-{rt}");
            let wall =
                med(&bx, crate::spec::Sample::wall_ms).zip(med(rt, crate::spec::Sample::wall_ms));
            if let Some((a, b)) = wall {
                extra.push(format!("| {rt} | {:+.1} ms |", a - b));
            }
        }
        rep.extra.extend(extra);
        Ok(rep)
    }

    fn case6b(&mut self) -> Result<CaseReport, Error> {
        const N: usize = 1000;
        let root = self.o.work.join("boxctl").join("6b");
        self.boxctl_root(&root, "64m", None)?;
        let rt = self.runtimes[self.manager_runtime()].bin.clone();
        let tmpl = format!("bxbench-{}-tmpl", self.o.nonce);
        let argv = self.boxctl_cmd(
            &root,
            &rt,
            &[
                "create",
                "--net",
                "none",
                "--name",
                &tmpl,
                "bb",
                "/bin/true",
            ],
        );
        run_cmd(&argv.iter().map(String::as_str).collect::<Vec<_>>())?;
        // Replicate the template's section of instances.toml N times (status
        // exited: `ps` shows them with -a, and refresh has nothing to do).
        let file = root.join("instances.toml");
        let text =
            fs::read_to_string(&file).map_err(|e| format!("read {}: {e}", file.display()))?;
        let start = text
            .find("\n[")
            .map(|i| i + 1)
            .ok_or("instances.toml has no section")?;
        let body_start = text[start..]
            .find('\n')
            .map(|i| start + i + 1)
            .ok_or("bad instances.toml")?;
        let body_end = text[body_start..]
            .find("\n[")
            .map(|i| body_start + i + 1)
            .unwrap_or(text.len());
        let body: String = text[body_start..body_end]
            .lines()
            .filter(|l| !l.starts_with("status ="))
            .map(|l| format!("{l}\n"))
            .collect();
        let mut out = text.clone();
        for i in 0..N {
            let id = format!("{:012x}", 0xbe_0000_0000u64 + i as u64);
            let b = body.replace(
                &format!("\"{tmpl}\""),
                &format!("\"bxbench-{}-i{i}\"", self.o.nonce),
            );
            out.push_str(&format!("\n[{id}]\nstatus = \"exited\"\n{b}"));
        }
        fs::write(&file, out).map_err(|e| format!("write {}: {e}", file.display()))?;
        let key = "boxctl";
        let mut v = self.boxctl_variant(key, format!("boxctl ({} instances)", N + 1), None, &root);
        v.on_fail = Some(vec![]);
        let boxctl = self.o.boxctl.clone();
        let rt_s = s(&rt);
        let def = CaseDef {
            number: 6,
            title: format!("6b — `boxctl ps` with {} instances in the instance file", N + 1),
            notes: vec![format!(
                "one real instance (created, never started) and {N} copies of its instances.toml section with new ids and names and status exited; `ps` lists running ones only (none), `ps -a` all, `ps -a --json` all as JSON."
            )],
            variants: vec![v],
            rounds: self.rounds(5, 2),
            iters: self.iters(4, 2),
            warmup: 1,
            steps: Box::new(move |v, _| {
                let base = vec![s(&boxctl), "--root".into(), s(&v.root), "--runtime".into(), rt_s.clone()];
                let with = |extra: &[&str]| {
                    let mut a = base.clone();
                    a.extend(extra.iter().map(|x| x.to_string()));
                    a
                };
                vec![
                    Step::Timed { label: "ps".into(), argv: with(&["ps"]) },
                    Step::Timed { label: "ps -a".into(), argv: with(&["ps", "-a"]) },
                    Step::Timed { label: "ps -a --json".into(), argv: with(&["ps", "-a", "--json"]) },
                ]
            }),
        };
        let run = self.run_case(&def);
        Ok(self.report(&def, &run))
    }

    /// An XFS file system (reflink) on a loop device, mounted under the work
    /// dir; unmounted by `Drop`-free explicit cleanup in case6a and, on
    /// interruption, by run.sh's trap (everything mounted under the work dir).
    fn xfs_mount(&self, size_mib: u64) -> Result<PathBuf, Error> {
        let img = self.o.work.join("xfs.img");
        let mnt = self.o.work.join("xfs");
        fs::create_dir_all(&mnt)?;
        let f = fs::File::create(&img)?;
        f.set_len(size_mib << 20)?;
        drop(f);
        run_cmd(&["mkfs.xfs", "-q", "-m", "reflink=1", &s(&img)])?;
        run_cmd(&["mount", "-o", "loop", &s(&img), &s(&mnt)])?;
        Ok(mnt)
    }

    fn case6a(&mut self) -> Result<CaseReport, Error> {
        let sizes = sizes(self.o.quick);
        let max = *sizes.iter().max().unwrap_or(&100);
        let rt = self.manager_runtime();
        let copy_base = self.o.work.join("boxctl").join("6a-copy");
        let xfs = match self.xfs_mount(max * 2 + 1024) {
            Ok(m) => Some(m),
            Err(e) => {
                eprintln!("case 6a: no reflink file system: {e}");
                None
            }
        };
        let result = self.case6a_inner(&sizes, rt, &copy_base, xfs.as_deref());
        if let Some(m) = &xfs {
            let _ = run_cmd(&["umount", &s(m)]);
        }
        let _ = fs::remove_file(self.o.work.join("xfs.img"));
        result
    }

    fn case6a_inner(
        &mut self,
        sizes: &[u64],
        rt: usize,
        copy_base: &Path,
        xfs: Option<&Path>,
    ) -> Result<CaseReport, Error> {
        let mut variants = Vec::new();
        for &mib in sizes {
            // ~80% of the image is data, the rest file system overhead + room.
            let data = self.o.work.join(format!("data-{mib}"));
            let _ = fs::remove_dir_all(&data);
            run_cmd(&["cp", "-a", &s(&self.rootfs), &s(&data)])?;
            write_filler(&data.join("filler"), (mib * 8 / 10) << 20)?;
            let mut places = vec![("copy", copy_base.join(format!("{mib}")))];
            if let Some(x) = xfs {
                places.push(("reflink", x.join(format!("{mib}"))));
            }
            for (method, root) in places {
                self.boxctl_root(&root, &format!("{mib}m"), Some(&data))?;
                let key = format!("{mib}m-{method}");
                let label = format!("{}, {method}", size_label(mib));
                variants.push(self.boxctl_variant(&key, label, Some(rt), &root));
            }
            let _ = fs::remove_dir_all(&data);
        }
        let boxctl = self.o.boxctl.clone();
        let def = CaseDef {
            number: 6,
            title: format!(
                "6a — time to a running instance (`boxctl run -d`) vs image size, copy vs reflink, runtime {}",
                self.runtimes[rt].label
            ),
            notes: vec![
                "images: the busybox rootfs plus an incompressible filler of 80% of the image size, imported with `boxctl image import --size`.".into(),
                "copy: boxctl root on the host's ext4 (sparse-aware copy of the image's data); reflink: boxctl root on an XFS file system (reflink=1) on a loop device made for the run (FICLONE, shared extents).".into(),
                "copy-on-write overlay / snapshot: not yet available (boxctl has no such mode).".into(),
                "`run -d` returns once the instance runs `sleep 60`; `rm -f` (stop + remove the disk) is timed separately.".into(),
            ],
            variants,
            rounds: self.rounds(3, 1),
            iters: self.iters(1, 1),
            warmup: 0,
            steps: Box::new(move |v, rt| {
                let base = vec![s(&boxctl), "--root".into(), s(&v.root), "--runtime".into(), rt.first().cloned().unwrap_or_default()];
                let with = |extra: &[&str]| {
                    let mut a = base.clone();
                    a.extend(extra.iter().map(|x| x.to_string()));
                    a
                };
                vec![
                    Step::Timed { label: "run -d".into(), argv: with(&["run", "-d", "--net", "none", "--name", "{id}", "img", "/bin/sleep", "60"]) },
                    Step::Timed { label: "rm -f".into(), argv: with(&["rm", "-f", "{id}"]) },
                ]
            }),
        };
        let run = self.run_case(&def);
        Ok(self.report(&def, &run))
    }

    /// 6d: `boxctl run -d` of an unprivileged instance (the default: its own user
    /// namespace, idmapped disk) and of one with `--userns=host`, interleaved in one run.
    fn case6d(&mut self) -> Result<CaseReport, Error> {
        let rt = self.manager_runtime();
        let root = self.o.work.join("boxctl").join("6d");
        self.boxctl_root(&root, "64m", None)?;
        let variants = vec![
            self.boxctl_variant("userns", "user namespace (default)".into(), Some(rt), &root),
            self.boxctl_variant("host", "--userns=host".into(), Some(rt), &root),
        ];
        let boxctl = self.o.boxctl.clone();
        let def = CaseDef {
            number: 6,
            title: format!(
                "6d — `boxctl run -d` with and without the user namespace, runtime {}",
                self.runtimes[rt].label
            ),
            notes: vec![
                "`boxctl run -d --net none --name ID [--userns=host] bb /bin/sleep 60` (64 MiB busybox image, full copy); `rm -f` timed separately.".into(),
                "user namespace: a host uid range allocated, a user namespace made for the idmapped mount of the disk (open_tree + mount_setattr + move_mount), the container in a user namespace of its own; --userns=host: none of it.".into(),
            ],
            variants,
            rounds: self.rounds(10, 3),
            iters: self.iters(3, 2),
            warmup: 1,
            steps: Box::new(move |v, rt| {
                let mut base = vec![s(&boxctl), "--root".into(), s(&v.root), "--runtime".into(), rt.first().cloned().unwrap_or_default()];
                let mut run = base.clone();
                run.extend(["run", "-d", "--net", "none", "--name", "{id}"].map(String::from));
                if v.key == "host" {
                    run.push("--userns=host".into());
                }
                run.extend(["bb", "/bin/sleep", "60"].map(String::from));
                base.extend(["rm", "-f", "{id}"].map(String::from));
                vec![
                    Step::Timed { label: "run -d".into(), argv: run },
                    Step::Timed { label: "rm -f".into(), argv: base },
                ]
            }),
        };
        let run = self.run_case(&def);
        Ok(self.report(&def, &run))
    }

    /// Case 6 reports (6a, 6b, 6c, 6d), or one "not yet available" report.
    pub(super) fn case6(&mut self) -> Vec<CaseReport> {
        let planned = [
            "6a time to a running instance vs image size (100 MiB, 1 GiB, 4 GiB): copy vs reflink vs copy-on-write",
            "6b `boxctl ps` with 1,000 instances in the instance file",
            "6c `boxctl run` overhead over a bare runtime `run`",
            "6d `boxctl run -d` with and without the user namespace",
        ];
        let usable = self.o.boxctl.exists()
            && Command::new(&self.o.boxctl)
                .arg("--version")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|st| st.success());
        if !usable {
            let mut extra = vec![
                format!(
                    "boxctl: not yet available ({} not built: cargo build --release -p boxctl).",
                    self.o.boxctl.display()
                ),
                String::new(),
            ];
            extra.extend(planned.iter().map(|p| format!("- {p}: not yet available")));
            eprintln!();
            return vec![CaseReport {
                number: 6,
                title: "boxctl".into(),
                notes: vec![],
                rows: vec![],
                extra,
                data: Value::Null,
            }];
        }
        let mut reps = Vec::new();
        type Sub = fn(&mut Bench) -> Result<CaseReport, Error>;
        let subs: [(&str, Sub); 4] = [
            ("6a", Bench::case6a),
            ("6b", Bench::case6b),
            ("6c", Bench::case6c),
            ("6d", Bench::case6d),
        ];
        for (name, f) in subs {
            eprint!("{name} ");
            match f(self) {
                Ok(r) => reps.push(r),
                Err(e) => reps.push(CaseReport {
                    number: 6,
                    title: format!("{name} — not run"),
                    notes: vec![],
                    rows: vec![],
                    extra: vec![format!("{name} could not be prepared: {e}")],
                    data: Value::Null,
                }),
            }
        }
        reps
    }
}
