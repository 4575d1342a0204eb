//! Exec, Attach and PortForward through containerd's streaming server, and the CRI log file.

use std::time::Duration;

use anyhow::{ensure, Context, Result};
use k8s_cri::v1::{AttachRequest, ContainerState, ExecRequest, PortForwardRequest};

use crate::lane::Lane;
use crate::stream::{exit_code, Stream};

const STREAM_TIMEOUT: Duration = Duration::from_secs(20);

pub(super) async fn exec_plain(l: &mut Lane) -> Result<()> {
    let cfg = l.pod_config("xplain");
    let c = l.container_config("c", &["sleep", "1000"]);
    let (_, id) = l.pod_with(&cfg, c).await?;
    let url = l
        .cri
        .rt
        .exec(ExecRequest {
            container_id: id,
            cmd: vec![
                "sh".into(),
                "-c".into(),
                "echo out; echo err >&2; exit 3".into(),
            ],
            tty: false,
            stdin: false,
            stdout: true,
            stderr: true,
        })
        .await
        .context("Exec failed")?
        .into_inner()
        .url;
    let got = Stream::open(&url, STREAM_TIMEOUT)?.receive(|_| false)?;
    ensure!(got.closed, "the exec stream did not end: {got:?}");
    ensure!(
        got.text(1) == "out\n" && got.text(2) == "err\n" && exit_code(&got.text(3)) == Some(3),
        "stdout {:?} stderr {:?} error channel {:?}",
        got.text(1),
        got.text(2),
        got.text(3)
    );
    Ok(())
}

pub(super) async fn exec_tty(l: &mut Lane) -> Result<()> {
    let cfg = l.pod_config("xtty");
    let c = l.container_config("c", &["sleep", "1000"]);
    let (_, id) = l.pod_with(&cfg, c).await?;
    let url = l
        .cri
        .rt
        .exec(ExecRequest {
            container_id: id,
            cmd: vec!["sh".into(), "-c".into(), "tty; read x; echo got-$x".into()],
            tty: true,
            stdin: true,
            stdout: true,
            stderr: false,
        })
        .await
        .context("Exec failed")?
        .into_inner()
        .url;
    let mut s = Stream::open(&url, STREAM_TIMEOUT)?;
    s.send(0, b"hello\n")?;
    let got = s.receive(|_| false)?;
    let out = got.text(1);
    ensure!(
        out.contains("/dev/pts/")
            && out.contains("got-hello")
            && exit_code(&got.text(3)) == Some(0),
        "stdout {out:?} error channel {:?}",
        got.text(3)
    );
    Ok(())
}

async fn attach(l: &mut Lane, base: &str, tty: bool, want: &str) -> Result<()> {
    let cfg = l.pod_config(base);
    let mut c = l.container_config("c", &["sh", "-c", "while read l; do echo \"got-$l\"; done"]);
    c.stdin = true;
    c.tty = tty;
    let (_, id) = l.pod_with(&cfg, c).await?;
    l.wait_state(&id, ContainerState::ContainerRunning).await?;
    let url = l
        .cri
        .rt
        .attach(AttachRequest {
            container_id: id,
            stdin: true,
            tty,
            stdout: true,
            stderr: !tty,
        })
        .await
        .context("Attach failed")?
        .into_inner()
        .url;
    let mut s = Stream::open(&url, STREAM_TIMEOUT)?;
    s.send(0, b"ping\n")?;
    let got = s.receive(|g| g.text(1).contains(want))?;
    ensure!(
        got.text(1).contains(want),
        "attached stdout {:?}, want {want:?}",
        got.text(1)
    );
    Ok(())
}

pub(super) async fn attach_plain(l: &mut Lane) -> Result<()> {
    attach(l, "aplain", false, "got-ping\n").await
}

pub(super) async fn attach_tty(l: &mut Lane) -> Result<()> {
    attach(l, "atty", true, "got-ping\r\n").await
}

pub(super) async fn port_forward(l: &mut Lane) -> Result<()> {
    let cfg = l.pod_config("pf");
    let c = l.container_config(
        "c",
        &[
            "sh",
            "-c",
            "mkdir -p /www && echo bxcri-pf-ok >/www/index.html && exec httpd -f -p 8080 -h /www",
        ],
    );
    let (pod, id) = l.pod_with(&cfg, c).await?;
    // The server is up when it answers inside the pod (bounded poll).
    let mut up = false;
    for _ in 0..50 {
        if l.sh(&id, "wget -q -O - http://127.0.0.1:8080/")
            .await
            .is_ok_and(|o| o.contains("bxcri-pf-ok"))
        {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    ensure!(up, "httpd in the pod never answered on 127.0.0.1:8080");
    let url = l
        .cri
        .rt
        .port_forward(PortForwardRequest {
            pod_sandbox_id: pod,
            port: vec![8080],
        })
        .await
        .context("PortForward failed")?
        .into_inner()
        .url;
    let mut s = Stream::open(&format!("{url}?port=8080"), STREAM_TIMEOUT)?;
    s.send(0, b"GET / HTTP/1.0\r\nHost: pod\r\n\r\n")?;
    let got = s.receive(|g| g.text(0).contains("bxcri-pf-ok"))?;
    let data = got.text(0);
    ensure!(
        data.contains("200 OK") && data.contains("bxcri-pf-ok"),
        "port-forwarded answer {data:?} (error channel {:?})",
        got.text(1)
    );
    Ok(())
}

pub(super) async fn logs(l: &mut Lane) -> Result<()> {
    let cfg = l.pod_config("logs");
    let c = l.container_config(
        "c",
        &[
            "sh",
            "-c",
            "echo out-line; echo err-line >&2; echo second-out",
        ],
    );
    let (_, id) = l.pod_with(&cfg, c).await?;
    l.wait_state(&id, ContainerState::ContainerExited).await?;
    let path = std::path::Path::new(&cfg.log_directory).join("c.log");
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read the container log {}", path.display()))?;
    // <RFC 3339 nano timestamp> <stdout|stderr> <F|P> <message>
    let mut entries = Vec::new();
    for line in text.lines() {
        let mut f = line.splitn(4, ' ');
        let (ts, stream, tag, msg) = (
            f.next().unwrap_or(""),
            f.next().unwrap_or(""),
            f.next().unwrap_or(""),
            f.next(),
        );
        ensure!(
            ts.len() >= 20
                && ts.as_bytes().get(10) == Some(&b'T')
                && (stream == "stdout" || stream == "stderr")
                && tag == "F",
            "log line {line:?} is not in the CRI log format"
        );
        entries.push((stream.to_owned(), msg.unwrap_or("").to_owned()));
    }
    let want = [
        ("stdout", "out-line"),
        ("stderr", "err-line"),
        ("stdout", "second-out"),
    ];
    for (stream, msg) in want {
        ensure!(
            entries.iter().any(|(s, m)| s == stream && m == msg),
            "no {stream} entry {msg:?} in {text:?}"
        );
    }
    Ok(())
}
