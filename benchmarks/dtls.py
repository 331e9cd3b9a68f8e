"""DTLS benchmarks: ours against OpenSSL (through pyOpenSSL) in the same process run.

Rows: full-handshake CPU time between two engines in memory (ECDSA P-256 both ways,
x25519 and P-256 groups, AES-128-GCM, extended master secret, use_srtp), handshakes
per second one server engine completes with cookies, and application-data
throughput for 1200-byte records in each direction.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import Any

from OpenSSL import SSL, crypto

from webrtc_secure import Certificate
from webrtc_secure.dtls import CipherSuite, DtlsConnection, NamedGroup
from webrtc_secure.dtls.listener import DtlsListener

SUITE = CipherSuite.ECDHE_ECDSA_AES_128_GCM_SHA256


def _cpu(fn: Callable[[], object], repeat: int) -> float:
    """Median process CPU seconds of one call."""
    samples = []
    for _ in range(repeat):
        start = time.process_time()
        fn()
        samples.append(time.process_time() - start)
    samples.sort()
    return samples[len(samples) // 2]


def _ours_pair(
    a: Certificate, b: Certificate, group: NamedGroup, cookies: bool = False
) -> tuple[DtlsConnection, DtlsConnection]:
    client = DtlsConnection(True, a, cipher_suites=[SUITE], groups=[group])
    server = DtlsConnection(False, b, cipher_suites=[SUITE], groups=[group], cookies=cookies)
    client.connect(0.0)
    for _ in range(10):
        for x, y in ((client, server), (server, client)):
            for d in x.datagrams_to_send(0.0):
                y.receive_datagram(d, 0.0)
        if client.is_connected and server.is_connected:
            return client, server
    raise RuntimeError("our handshake did not complete")


def _openssl_context(cert: Certificate, group: NamedGroup) -> SSL.Context:
    ctx = SSL.Context(SSL.DTLS_METHOD)
    ctx.use_certificate(crypto.X509.from_cryptography(cert.x509))
    ctx.use_privatekey(crypto.PKey.from_cryptography_key(cert.private_key))
    ctx.set_verify(SSL.VERIFY_PEER | SSL.VERIFY_FAIL_IF_NO_PEER_CERT, lambda *a: True)
    ctx.set_cipher_list(b"ECDHE-ECDSA-AES128-GCM-SHA256")
    ctx.set_tlsext_use_srtp(b"SRTP_AEAD_AES_128_GCM:SRTP_AES128_CM_SHA1_80")
    ctx.set_options(SSL.OP_NO_QUERY_MTU | SSL.OP_NO_TICKET)
    _set_group(ctx, group)
    return ctx


def _set_group(ctx: SSL.Context, group: NamedGroup) -> None:
    """Pin OpenSSL to the group our engines use, so both sides do the same math.

    OpenSSL's default group list starts with x25519, which two default endpoints pick;
    pyOpenSSL can only pin a NIST curve (set_tmp_ecdh), which it does for P-256."""
    if group == NamedGroup.SECP256R1:
        ctx.set_tmp_ecdh(crypto.get_elliptic_curve("prime256v1"))


def _step(conn: SSL.Connection) -> None:
    with contextlib.suppress(SSL.WantReadError):
        conn.do_handshake()


def _openssl_pair(ca: SSL.Context, sa: SSL.Context) -> tuple[SSL.Connection, SSL.Connection]:
    client, server = SSL.Connection(ca, None), SSL.Connection(sa, None)
    for c in (client, server):
        c.set_ciphertext_mtu(1200)
    client.set_connect_state()
    server.set_accept_state()
    for _ in range(10):
        for x, y in ((client, server), (server, client)):
            _step(x)
            try:
                while True:
                    y.bio_write(x.bio_read(65536))
            except SSL.WantReadError:
                pass
        _step(client)
        if client.get_cipher_name() and server.get_cipher_name():
            _step(server)
            return client, server
    raise RuntimeError("OpenSSL handshake did not complete")


def run(quick: bool = False) -> list[dict[str, Any]]:
    repeat = 15 if quick else 60
    rows: list[dict[str, Any]] = []
    a, b = Certificate.generate(), Certificate.generate()
    for group in (NamedGroup.X25519, NamedGroup.SECP256R1):
        ctx_a, ctx_b = _openssl_context(a, group), _openssl_context(b, group)
        ours = _cpu(lambda g=group: _ours_pair(a, b, g), repeat)
        ref = _cpu(lambda ca=ctx_a, cb=ctx_b: _openssl_pair(ca, cb), repeat)
        rows.append(
            {
                "benchmark": f"dtls handshake CPU ms ({group.name.lower()})",
                "ours": ours * 1e3,
                "reference": ref * 1e3,
                "ratio": ours / ref,
                "goal": "<= 1.0",
                "reference_name": "pyOpenSSL",
            }
        )

    # handshakes per second one server completes (cookies on: 3 round trips)
    listener_cert = Certificate.generate()
    n = 30 if quick else 100
    listener = DtlsListener(listener_cert, cipher_suites=[SUITE])
    start = time.process_time()
    server_cpu = 0.0
    for i in range(n):
        addr = ("127.0.0.1", 10000 + i)
        client = DtlsConnection(True, a, cipher_suites=[SUITE])
        client.connect(0.0)
        for _ in range(10):
            for d in client.datagrams_to_send(0.0):
                t = time.process_time()
                conn, replies = listener.receive_datagram(d, addr, 0.0)
                replies += conn.datagrams_to_send(0.0) if conn else []
                server_cpu += time.process_time() - t
                for r in replies:
                    client.receive_datagram(r, 0.0)
        assert client.is_connected
        listener.forget(addr)
    del start
    rows.append(
        {
            "benchmark": "server handshakes/s on one core (cookies, server CPU only)",
            "ours": n / server_cpu,
            "reference": None,
            "ratio": None,
            "goal": "",
            "reference_name": "",
        }
    )

    # application data throughput, 1200-byte records
    payload = b"\xa5" * 1200
    count = 2000 if quick else 10000
    c, s = _ours_pair(a, b, NamedGroup.X25519)
    oc, os_ = _openssl_pair(
        _openssl_context(a, NamedGroup.X25519), _openssl_context(b, NamedGroup.X25519)
    )
    for direction, (sender, receiver, osend, orecv) in {
        "client->server": (c, s, oc, os_),
        "server->client": (s, c, os_, oc),
    }.items():

        def ours_run(sender: DtlsConnection = sender, receiver: DtlsConnection = receiver) -> None:
            for _ in range(count):
                sender.send(payload)
                for d in sender.datagrams_to_send(0.0):
                    receiver.receive_datagram(d, 0.0)
                receiver.next_event()

        def ref_run(osend: SSL.Connection = osend, orecv: SSL.Connection = orecv) -> None:
            for _ in range(count):
                osend.send(payload)
                orecv.bio_write(osend.bio_read(65536))
                orecv.recv(2048)

        ours_s = _cpu(ours_run, 3)
        ref_s = _cpu(ref_run, 3)
        mb = count * len(payload) / 1e6
        rows.append(
            {
                "benchmark": f"dtls app data MB/s 1200 B ({direction}, send+receive)",
                "ours": mb / ours_s,
                "reference": mb / ref_s,
                "ratio": ref_s / ours_s,
                "goal": ">= 1.0",
                "reference_name": "pyOpenSSL",
            }
        )
    return rows


if __name__ == "__main__":
    for row in run(quick=True):
        print(row)
