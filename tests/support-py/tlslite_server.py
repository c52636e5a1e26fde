#!/usr/bin/env python3
"""A tlslite-ng TLS server on 127.0.0.1 for the legacy scan tests (tests/it/legacy.rs).

Serves SSL 3.0 .. TLS 1.3 with exactly the versions, ciphers, MACs and key exchanges asked
for, including what modern libraries refuse (SSL 3.0, RC4, 3DES, NULL, anonymous DH).
Binds port 0 and prints "listening PORT" once it accepts; each connection gets its own thread
and a bounded handshake; runs until killed (or its parent closes our stdin).

    tlslite_server.py --cert leaf.pem --key leaf.key --min 3.0 --max 3.1 \
        --ciphers aes128,rc4 --macs sha,md5 --kx rsa,dhe_rsa [--anon]
"""
import argparse
import os
import socket
import sys
import threading

from tlslite.api import HandshakeSettings, TLSConnection, X509CertChain, parsePEMKey

VERSIONS = {"3.0": (3, 0), "3.1": (3, 1), "3.2": (3, 2), "3.3": (3, 3), "3.4": (3, 4)}


def settings_from(args):
    s = HandshakeSettings()
    s.minVersion = VERSIONS[args.min]
    s.maxVersion = VERSIONS[args.max]
    s.versions = sorted((v for v in VERSIONS.values() if s.minVersion <= v <= s.maxVersion),
                        reverse=True)
    s.cipherNames = args.ciphers.split(",")
    s.macNames = args.macs.split(",")
    s.keyExchangeNames = args.kx.split(",")
    return s


def serve_one(sock, chain, key, settings, anon):
    sock.settimeout(10)
    conn = TLSConnection(sock)
    try:
        conn.handshakeServer(certChain=chain, privateKey=key, settings=settings, anon=anon)
        conn.read(max=1)  # hold the session until the client closes
    except Exception as e:  # noqa: BLE001 - a scanner's hello ends most handshakes early
        if os.environ.get("TLSLITE_SERVER_DEBUG"):
            print("handshake ended:", repr(e), file=sys.stderr, flush=True)
    finally:
        try:
            sock.close()
        except OSError:
            pass


def watch_stdin():
    """Exit when the test that started us goes away (its end of our stdin closes)."""
    try:
        sys.stdin.read()
    finally:
        os._exit(0)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--cert", help="PEM chain (not used with --anon)")
    p.add_argument("--key", help="PEM private key (not used with --anon)")
    p.add_argument("--min", default="3.1", choices=VERSIONS)
    p.add_argument("--max", default="3.3", choices=VERSIONS)
    p.add_argument("--ciphers", default="aes128,aes256")
    p.add_argument("--macs", default="sha,sha256")
    p.add_argument("--kx", default="rsa,dhe_rsa,ecdhe_rsa")
    p.add_argument("--anon", action="store_true", help="anonymous suites only, no certificate")
    args = p.parse_args()

    settings = settings_from(args)
    chain, key = None, None
    if not args.anon:
        # With a certificate tlslite only considers authenticated suites.
        with open(args.cert) as f:
            chain = X509CertChain()
            chain.parsePemList(f.read())
        with open(args.key) as f:
            key = parsePEMKey(f.read(), private=True)

    threading.Thread(target=watch_stdin, daemon=True).start()
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    print("listening", listener.getsockname()[1], flush=True)
    while True:
        sock, _ = listener.accept()
        threading.Thread(target=serve_one, args=(sock, chain, key, settings, args.anon),
                         daemon=True).start()


if __name__ == "__main__":
    main()
