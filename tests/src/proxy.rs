//! A TCP proxy on loopback that can freeze connections: a frozen connection stays open
//! on both sides but forwards nothing any more, like a path whose middlebox or peer
//! vanished without a FIN or RST. It freezes the PostgreSQL connections that issued a
//! `LISTEN` (recognised in the plain-text protocol stream), so a service's notification
//! connection dies silently while its pool keeps working.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};

#[derive(Default)]
struct Conn {
    listens: AtomicBool,
    frozen: AtomicBool,
}

pub struct FreezingProxy {
    pub port: u16,
    conns: Arc<Mutex<Vec<Arc<Conn>>>>,
    listen_conns: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl FreezingProxy {
    /// Forwards 127.0.0.1:`port` (a free port) to 127.0.0.1:`upstream`.
    pub async fn start(upstream: u16) -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let conns: Arc<Mutex<Vec<Arc<Conn>>>> = Arc::default();
        let listen_conns: Arc<AtomicUsize> = Arc::default();
        let (c2, l2) = (conns.clone(), listen_conns.clone());
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)).await else {
                    continue;
                };
                let conn = Arc::new(Conn::default());
                c2.lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(conn.clone());
                let (cr, cw) = client.into_split();
                let (sr, sw) = server.into_split();
                tokio::spawn(pipe(cr, sw, conn.clone(), Some(l2.clone())));
                tokio::spawn(pipe(sr, cw, conn, None));
            }
        });
        Ok(FreezingProxy {
            port,
            conns,
            listen_conns,
            task,
        })
    }

    /// Freezes every open connection that has issued a LISTEN; returns how many.
    pub fn freeze_listeners(&self) -> usize {
        let conns = self.conns.lock().unwrap_or_else(|p| p.into_inner());
        let mut n = 0;
        for c in conns.iter() {
            if c.listens.load(Ordering::SeqCst) && !c.frozen.swap(true, Ordering::SeqCst) {
                n += 1;
            }
        }
        n
    }

    /// Connections that have issued a LISTEN so far (frozen or not).
    pub fn listen_connections(&self) -> usize {
        self.listen_conns.load(Ordering::SeqCst)
    }
}

impl Drop for FreezingProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Copies one direction. Client → server bytes are scanned for `LISTEN` (the tail of
/// the previous read is kept, so a keyword split across reads is still seen). Once the
/// connection is frozen, nothing more is forwarded and both sockets stay open.
async fn pipe(
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    conn: Arc<Conn>,
    listens: Option<Arc<AtomicUsize>>,
) {
    let mut buf = vec![0u8; 64 * 1024];
    let mut tail: Vec<u8> = Vec::new();
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if conn.frozen.load(Ordering::SeqCst) {
            // Hold both halves open and forward nothing, for good.
            std::future::pending::<()>().await;
        }
        if let Some(counter) = &listens {
            if !conn.listens.load(Ordering::SeqCst) {
                tail.extend_from_slice(&buf[..n]);
                if tail.windows(6).any(|w| w == b"LISTEN") {
                    conn.listens.store(true, Ordering::SeqCst);
                    counter.fetch_add(1, Ordering::SeqCst);
                }
                let keep = tail.len().saturating_sub(5);
                tail.drain(..keep);
            }
        }
        if to.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    if !conn.frozen.load(Ordering::SeqCst) {
        let _ = to.shutdown().await;
    } else {
        std::future::pending::<()>().await;
    }
}

/// A small HTTP load balancer on loopback in front of several backends, in the way
/// nginx's `proxy_next_upstream error` works: each request goes to the next backend in
/// turn; when a backend refuses the connection or dies before answering anything, a
/// GET or HEAD is retried on the next backend (other methods fail with 502, as they
/// might have been applied). One request per connection (`Connection: close` is set
/// towards the backend).
pub struct Balancer {
    pub port: u16,
    pub url: String,
    /// Requests retried on another backend.
    pub retried: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Balancer {
    pub async fn start(backends: Vec<u16>) -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let retried: Arc<AtomicUsize> = Arc::default();
        let next: Arc<AtomicUsize> = Arc::default();
        let backends = Arc::new(backends);
        let r2 = retried.clone();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                tokio::spawn(balance(client, backends.clone(), next.clone(), r2.clone()));
            }
        });
        Ok(Balancer {
            port,
            url: format!("http://127.0.0.1:{port}"),
            retried,
            task,
        })
    }
}

impl Drop for Balancer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Reads one request (headers, then a `Content-Length` body) and returns it with its
/// `Connection` header replaced by `Connection: close`, and its method.
async fn read_request(client: &mut TcpStream) -> Option<(Vec<u8>, String)> {
    let mut data = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    let head_end = loop {
        if let Some(p) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            break p;
        }
        let n = client.read(&mut buf).await.ok()?;
        if n == 0 {
            return None;
        }
        data.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&data[..head_end]).to_string();
    let mut lines = head.split("\r\n");
    let request_line = lines.next()?.to_string();
    let method = request_line.split(' ').next()?.to_string();
    let mut out = format!("{request_line}\r\n");
    let mut length = 0usize;
    for line in lines {
        let lower = line.to_ascii_lowercase();
        if lower.starts_with("connection:") {
            continue;
        }
        if let Some(v) = lower.strip_prefix("content-length:") {
            length = v.trim().parse().ok()?;
        }
        out.push_str(line);
        out.push_str("\r\n");
    }
    out.push_str("Connection: close\r\n\r\n");
    let mut body = data[head_end + 4..].to_vec();
    while body.len() < length {
        let n = client.read(&mut buf).await.ok()?;
        if n == 0 {
            return None;
        }
        body.extend_from_slice(&buf[..n]);
    }
    let mut request = out.into_bytes();
    request.extend_from_slice(&body);
    Some((request, method))
}

async fn balance(
    mut client: TcpStream,
    backends: Arc<Vec<u16>>,
    next: Arc<AtomicUsize>,
    retried: Arc<AtomicUsize>,
) {
    let Some((request, method)) = read_request(&mut client).await else {
        return;
    };
    let retry_ok = method == "GET" || method == "HEAD";
    let first = next.fetch_add(1, Ordering::SeqCst);
    for i in 0..backends.len() {
        if i > 0 {
            if !retry_ok {
                break;
            }
            retried.fetch_add(1, Ordering::SeqCst);
        }
        let port = backends[(first + i) % backends.len()];
        let Ok(mut upstream) = TcpStream::connect(("127.0.0.1", port)).await else {
            continue;
        };
        if upstream.write_all(&request).await.is_err() {
            continue;
        }
        let mut response = Vec::new();
        let read = upstream.read_to_end(&mut response).await;
        if response.is_empty() {
            continue; // died before answering anything
        }
        // After a partial answer (`read` failed) the client sees a truncated response,
        // as it would behind nginx.
        let _ = read;
        let _ = client.write_all(&response).await;
        let _ = client.shutdown().await;
        return;
    }
    let body = "no backend answered";
    let _ = client
        .write_all(
            format!(
                "HTTP/1.1 502 Bad Gateway\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
                body.len()
            )
            .as_bytes(),
        )
        .await;
    let _ = client.shutdown().await;
}
