//! Broken and hostile peers: a tarpit, a garbage talker, a resetter, a plain-HTTP server.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// What the peer does with each connection.
#[derive(Clone, Copy)]
pub enum Behaviour {
    /// Accepts and never says anything.
    Tarpit,
    /// Answers the ClientHello with random-looking non-TLS bytes.
    Garbage,
    /// Reads the ClientHello, then resets the connection (RST).
    Reset,
    /// Answers like a plain HTTP server.
    PlainHttp,
}

/// A running hostile peer; stops when dropped.
pub struct Peer {
    pub addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Drop for Peer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub async fn start(behaviour: Behaviour) -> Peer {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let task = tokio::spawn(async move {
        loop {
            let Ok((mut tcp, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                match behaviour {
                    Behaviour::Tarpit => {
                        tokio::time::sleep(Duration::from_secs(30)).await;
                    }
                    Behaviour::Garbage => {
                        let _ = tcp.read(&mut buf).await;
                        let junk: Vec<u8> = (0..2048u32)
                            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8 | 0x80)
                            .collect();
                        let _ = tcp.write_all(&junk).await;
                        tokio::time::sleep(Duration::from_secs(5)).await;
                    }
                    Behaviour::Reset => {
                        let _ = tcp.read(&mut buf).await;
                        let _ = tcp.set_zero_linger();
                        drop(tcp);
                    }
                    Behaviour::PlainHttp => {
                        let _ = tcp.read(&mut buf).await;
                        let _ = tcp
                            .write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                            .await;
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
            });
        }
    });
    Peer { addr, task }
}
