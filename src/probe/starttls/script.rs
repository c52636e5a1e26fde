//! A scripted STARTTLS peer for the unit tests: it sends and expects exact bytes in order, and
//! checks the client sent nothing more.

use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

use super::{upgrade_io, UpgradeError};
use crate::config::StartTls;

/// One step of a scripted server: what it sends, or what it expects to read, exactly.
pub(super) enum Step {
    Send(&'static [u8]),
    Expect(&'static [u8]),
    /// Close the connection now.
    Close,
}
use Step::{Close, Expect, Send};

/// Runs `proto`'s upgrade against a peer following `script`, and returns the client's
/// result after checking the peer read exactly what it expected.
pub(super) async fn run(proto: StartTls, script: Vec<Step>) -> Result<(), UpgradeError> {
    let (mut client, server) = tokio::io::duplex(128 * 1024);
    let peer = tokio::spawn(serve(server, script));
    let result = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        upgrade_io(&mut client, proto, "example.org", "[192.0.2.1]"),
    )
    .await
    .expect("upgrade finishes");
    drop(client);
    peer.await.expect("peer task");
    result
}

async fn serve(mut io: DuplexStream, script: Vec<Step>) {
    for step in script {
        match step {
            Send(b) => {
                if io.write_all(b).await.is_err() {
                    return;
                }
            }
            Expect(want) => {
                let mut got = vec![0u8; want.len()];
                io.read_exact(&mut got)
                    .await
                    .unwrap_or_else(|e| panic!("peer expected {:?}: {e}", s(want)));
                assert_eq!(s(&got), s(want), "client sent");
            }
            Close => return,
        }
    }
    // Then hold the connection open until the client hangs up.
    let mut rest = Vec::new();
    let _ = io.read_to_end(&mut rest).await;
    assert!(rest.is_empty(), "client sent more: {:?}", s(&rest));
}

fn s(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The message of a `Refused`; panics on any other result.
pub(super) fn refused(r: Result<(), UpgradeError>) -> String {
    match r {
        Err(UpgradeError::Refused(m)) => m,
        other => panic!("expected Refused, got {other:?}"),
    }
}

/// The message of a `Protocol` error; panics on any other result.
pub(super) fn protocol(r: Result<(), UpgradeError>) -> String {
    match r {
        Err(UpgradeError::Protocol(m)) => m,
        other => panic!("expected Protocol, got {other:?}"),
    }
}
