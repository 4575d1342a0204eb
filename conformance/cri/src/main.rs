//! cri-lane: runs pod sandboxes and containers through containerd's CRI plugin as a
//! kubelet does, one line per case ("case<TAB>ok|fail<TAB>detail") for
//! conformance/cri/run.sh, which runs it once with runc and once with boxrun.
//!
//!   cri-lane --socket SOCK run --handler H --runtime BIN --runtime-root DIR
//!            --default-runtime-root DIR --work DIR --cgroup-parent /P --image REF
//!            --subnet A.B.C [--only SUBSTRING]
//!   cri-lane --socket SOCK cleanup        (stops and removes every sandbox)

mod cases;
mod lane;
mod stream;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context, Result};

use lane::{Lane, Node};

/// Flags as NAME VALUE pairs after the subcommand.
fn flag(args: &[String], name: &str) -> Result<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
        .with_context(|| {
            format!("missing {name}: see the usage at the top of conformance/cri/src/main.rs")
        })
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let socket = PathBuf::from(flag(&args, "--socket")?);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    if args.iter().any(|a| a == "cleanup") {
        return rt.block_on(async {
            let mut cri = lane::connect(&socket).await?;
            let n = lane::remove_all_pods(&mut cri).await?;
            eprintln!("cri-lane: removed {n} pod sandbox(es)");
            Ok(())
        });
    }
    if !args.iter().any(|a| a == "run") {
        bail!("usage: cri-lane --socket SOCK run|cleanup ... (see conformance/cri/src/main.rs)");
    }
    let node = Node {
        handler: flag(&args, "--handler")?,
        runtime: PathBuf::from(flag(&args, "--runtime")?),
        runtime_root: PathBuf::from(flag(&args, "--runtime-root")?),
        default_runtime_root: PathBuf::from(flag(&args, "--default-runtime-root")?),
        work: PathBuf::from(flag(&args, "--work")?),
        cgroup_parent: flag(&args, "--cgroup-parent")?,
        image: flag(&args, "--image")?,
        subnet: flag(&args, "--subnet")?,
    };
    let only = flag(&args, "--only").ok();
    std::fs::create_dir_all(&node.work)
        .with_context(|| format!("cannot create {}", node.work.display()))?;
    rt.block_on(run(socket, node, only))
}

async fn run(socket: PathBuf, node: Node, only: Option<String>) -> Result<()> {
    let cri = lane::connect(&socket).await?;
    let mut lane = Lane::new(cri, node);
    for case in cases::ALL {
        if only
            .as_ref()
            .is_some_and(|o| !case.name.contains(o.as_str()))
        {
            continue;
        }
        let outcome =
            match tokio::time::timeout(Duration::from_secs(90), (case.run)(&mut lane)).await {
                Ok(r) => r,
                Err(_) => Err(anyhow::anyhow!("timed out after 90 s")),
            };
        let cleanup = lane.remove_pods().await;
        let outcome = outcome.and(cleanup.context("clean-up after the case"));
        match outcome {
            Ok(()) => println!("{}\tok\t", case.name),
            Err(e) => println!(
                "{}\tfail\t{}",
                case.name,
                format!("{e:#}").replace(['\n', '\t'], " ")
            ),
        }
    }
    Ok(())
}
