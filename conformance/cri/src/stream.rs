//! The streaming server's websocket protocol (`v4.channel.k8s.io`), as far as the lane
//! needs it: one connection to the URL Exec, Attach or PortForward returned, binary frames
//! whose first byte names the channel (exec/attach: 0 stdin, 1 stdout, 2 stderr, 3 error;
//! port forward: 0 data, 1 error for the first port).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// One websocket connection to the streaming server.
pub struct Stream {
    sock: TcpStream,
    deadline: Instant,
}

/// What arrived on each channel before the server closed (or the deadline passed).
#[derive(Default, Debug)]
pub struct Received {
    /// Bytes per channel number.
    pub channels: [Vec<u8>; 5],
    /// Whether the server closed the stream (close frame or end of connection).
    pub closed: bool,
}

impl Received {
    /// One channel's bytes as text.
    pub fn text(&self, channel: usize) -> String {
        String::from_utf8_lossy(&self.channels[channel]).into_owned()
    }
}

impl Stream {
    /// Opens URL (`http://127.0.0.1:PORT/PATH`) as a websocket, at most TIMEOUT in all.
    pub fn open(url: &str, timeout: Duration) -> Result<Stream> {
        let rest = url
            .strip_prefix("http://")
            .with_context(|| format!("streaming URL {url} is not http://"))?;
        let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let mut sock = TcpStream::connect(host)
            .with_context(|| format!("cannot connect to the streaming server {host}"))?;
        sock.set_read_timeout(Some(timeout))?;
        sock.set_write_timeout(Some(timeout))?;
        let req = format!(
            "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
             Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: Ynhjcmktc3RyZWFtLWtleQ==\r\n\
             Sec-WebSocket-Protocol: v4.channel.k8s.io\r\n\r\n"
        );
        sock.write_all(req.as_bytes())?;
        let mut head = Vec::new();
        let mut b = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            if sock.read(&mut b)? == 0 || head.len() > 16384 {
                bail!(
                    "the streaming server closed before its upgrade answer: {}",
                    String::from_utf8_lossy(&head)
                );
            }
            head.push(b[0]);
        }
        let head = String::from_utf8_lossy(&head);
        if !head.starts_with("HTTP/1.1 101") {
            bail!(
                "the streaming server refused the websocket upgrade: {}",
                head.lines().next().unwrap_or("")
            );
        }
        Ok(Stream {
            sock,
            deadline: Instant::now() + timeout,
        })
    }

    /// Sends DATA on CHANNEL (one masked binary frame, as a client must).
    pub fn send(&mut self, channel: u8, data: &[u8]) -> Result<()> {
        let mut payload = Vec::with_capacity(data.len() + 1);
        payload.push(channel);
        payload.extend_from_slice(data);
        let mut frame = vec![0x82];
        match payload.len() {
            n if n < 126 => frame.push(0x80 | n as u8),
            n if n <= 0xffff => {
                frame.push(0x80 | 126);
                frame.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                frame.push(0x80 | 127);
                frame.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        let mask = [0x1b, 0x2c, 0x3d, 0x4e];
        frame.extend_from_slice(&mask);
        frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        self.sock
            .write_all(&frame)
            .context("cannot write to the streaming server")
    }

    /// Reads frames until the server closes, the deadline passes, or DONE says enough.
    pub fn receive(&mut self, done: impl Fn(&Received) -> bool) -> Result<Received> {
        let mut got = Received::default();
        while !done(&got) {
            let left = self.deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            self.sock.set_read_timeout(Some(left))?;
            match self.frame() {
                Ok(Some((0x8, _))) | Ok(None) => {
                    got.closed = true;
                    break;
                }
                Ok(Some((0x9, p))) => self.pong(&p)?,
                // continuation, text and binary frames
                Ok(Some((0x0..=0x2, p))) => {
                    if let Some((&ch, data)) = p.split_first() {
                        if let Some(buf) = got.channels.get_mut(ch as usize) {
                            buf.extend_from_slice(data);
                        }
                    }
                }
                Ok(Some(_)) => {}
                Err(e) if is_timeout(&e) => break,
                Err(e) => return Err(e.into()),
            }
        }
        Ok(got)
    }

    fn pong(&mut self, payload: &[u8]) -> Result<()> {
        let mut frame = vec![0x8a, 0x80 | payload.len().min(125) as u8, 0, 0, 0, 0];
        frame.extend_from_slice(&payload[..payload.len().min(125)]);
        Ok(self.sock.write_all(&frame)?)
    }

    /// One frame: (opcode, payload), None at the end of the connection.
    fn frame(&mut self) -> std::io::Result<Option<(u8, Vec<u8>)>> {
        let mut h = [0u8; 2];
        if let Err(e) = self.sock.read_exact(&mut h) {
            return if e.kind() == std::io::ErrorKind::UnexpectedEof {
                Ok(None)
            } else {
                Err(e)
            };
        }
        let mut len = u64::from(h[1] & 0x7f);
        if len == 126 {
            let mut b = [0u8; 2];
            self.sock.read_exact(&mut b)?;
            len = u64::from(u16::from_be_bytes(b));
        } else if len == 127 {
            let mut b = [0u8; 8];
            self.sock.read_exact(&mut b)?;
            len = u64::from_be_bytes(b);
        }
        let mut mask = [0u8; 4];
        if h[1] & 0x80 != 0 {
            self.sock.read_exact(&mut mask)?;
        }
        let mut payload = vec![0u8; usize::try_from(len).unwrap_or(usize::MAX).min(1 << 24)];
        self.sock.read_exact(&mut payload)?;
        if h[1] & 0x80 != 0 {
            payload
                .iter_mut()
                .enumerate()
                .for_each(|(i, b)| *b ^= mask[i % 4]);
        }
        Ok(Some((h[0] & 0x0f, payload)))
    }
}

fn is_timeout(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
    )
}

/// The exit code the v4 error channel reports: 0 for `Success`, the `ExitCode` cause of a
/// `NonZeroExitCode` failure, None when the channel says neither.
pub fn exit_code(error_channel: &str) -> Option<i32> {
    let v: serde_json::Value = serde_json::from_str(error_channel).ok()?;
    if v["status"] == "Success" {
        return Some(0);
    }
    v["details"]["causes"]
        .as_array()?
        .iter()
        .find(|c| c["reason"] == "ExitCode")?
        .get("message")?
        .as_str()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_code_reads_success_and_the_exit_code_cause() {
        assert_eq!(exit_code(r#"{"metadata":{},"status":"Success"}"#), Some(0));
        let failure = r#"{"metadata":{},"status":"Failure","message":"command terminated with non-zero exit code: exit status 3",
            "reason":"NonZeroExitCode","details":{"causes":[{"reason":"ExitCode","message":"3"}]}}"#;
        assert_eq!(exit_code(failure), Some(3));
        assert_eq!(
            exit_code(r#"{"status":"Failure","message":"no such container"}"#),
            None
        );
        assert_eq!(exit_code(""), None);
    }

    #[test]
    fn frames_are_masked_and_read_back() {
        use std::net::TcpListener;
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let addr = listener.local_addr().expect("local address");
        let server = std::thread::spawn(move || {
            let (mut c, _) = listener.accept().expect("accept");
            let mut head = Vec::new();
            let mut b = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") {
                c.read_exact(&mut b).expect("read the upgrade request");
                head.push(b[0]);
            }
            c.write_all(b"HTTP/1.1 101 Switching Protocols\r\n\r\n")
                .expect("answer");
            // the client's frame: masked, channel 0, "hi"
            let mut f = [0u8; 9];
            c.read_exact(&mut f).expect("read the client frame");
            let mask = [f[2], f[3], f[4], f[5]];
            let payload: Vec<u8> = f[6..]
                .iter()
                .enumerate()
                .map(|(i, b)| b ^ mask[i % 4])
                .collect();
            assert_eq!((f[0], f[1]), (0x82, 0x80 | 3));
            assert_eq!(payload, b"\0hi");
            // stdout "ok" on channel 1, then close
            c.write_all(&[0x82, 3, 1, b'o', b'k', 0x88, 0])
                .expect("write frames");
        });
        let mut s = Stream::open(
            &format!("http://{addr}/exec/token"),
            Duration::from_secs(10),
        )
        .expect("open");
        s.send(0, b"hi").expect("send");
        let got = s.receive(|_| false).expect("receive");
        server.join().expect("server thread");
        assert!(got.closed);
        assert_eq!(got.text(1), "ok");
    }
}
