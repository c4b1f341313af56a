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
