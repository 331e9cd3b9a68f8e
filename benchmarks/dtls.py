"""DTLS benchmarks: ours against OpenSSL (through pyOpenSSL) in the same process run.

Rows, all CPU time of this process (``time.process_time``), ours and OpenSSL's
samples interleaved round by round (alternating which goes first) and each side's
median taken, so that load from other processes on a shared machine hits both:

- full handshake between two engines in memory, for the x25519 and the secp256r1
  group;
- handshakes per second one server engine completes behind a DtlsListener with
  cookies (server CPU only; no reference);
- application data, 1200-byte records, one side's send plus the other's receive, in
  each direction;
- DTLS 1.3 against our own DTLS 1.2 (same run): handshake CPU, round trips to
  connected, application data in each direction as above, and a flush of 8 records
  through ``send_many`` (``--app13`` runs only the application data rows, repeated).

What each side does in a handshake row (the same protocol work on both):

- both endpoints: ECDSA P-256 certificate (the same two certificates for both
  stacks), ECDHE_ECDSA_AES_128_GCM_SHA256 only, the row's group only (ours through
  ``groups=``, OpenSSL through its default list, which starts with x25519, or
  ``set_tmp_ecdh`` for P-256), extended master secret (OpenSSL's default), use_srtp
  offering AEAD_AES_128_GCM and AES128_CM_HMAC_SHA1_80, MTU 1200, no session
  tickets, no HelloVerifyRequest (our server ``cookies=False``; OpenSSL does no
  cookie exchange unless asked), and no session cache (OpenSSL's server cache is
  switched off: we keep no sessions either);
- the server requests the client certificate and each side checks the peer's: ours
  with ``remote_fingerprints`` (SHA-256 of the DER, during the handshake); OpenSSL
  with ``VERIFY_PEER | VERIFY_FAIL_IF_NO_PEER_CERT``, a callback that accepts the
  self-signed certificate, and the SHA-256 fingerprint of the peer certificate
  compared after the handshake (aiortc's way). OpenSSL also runs its chain
  verification (X509_verify_cert) inside, which its API cannot leave out when a
  client certificate is requested;
- the timed work creates both connection objects (contexts and certificates are
  made once, outside the timing) and moves every datagram between them in memory
  until both report the handshake done.

The asymmetric crypto is the same OpenSSL code on both sides (pyOpenSSL runs on the
OpenSSL inside ``cryptography``): per side one ECDSA sign, one ECDSA verify, one
ECDHE key generation and one exchange, one certificate parse. Ours also pays for
``cryptography`` holding EC keys as legacy EC_KEYs, which OpenSSL exports to its
provider on first use (about 15 us per fresh key here: the peer's certificate key,
and for P-256 both ECDHE keys); OpenSSL also runs X509_verify_cert, which ours has
no use for (WebRTC pins the certificate by fingerprint).

Before timing, each pair is checked to have negotiated the intended suite, group and
SRTP profile, and the extended master secret on our side.

Application-data rows: one 1200-byte payload per iteration, sealed by one side and
opened by the other through the same in-memory hand-off (ours: ``send`` ->
``datagrams_to_send`` -> ``receive_datagram`` -> ``next_event``; OpenSSL: ``send`` ->
``bio_read`` -> ``bio_write`` -> ``recv``).

Changes to make the rows fair (previously ours and OpenSSL's samples were taken in
two separate blocks, and only OpenSSL looked at the peer certificate): interleaved
samples, the fingerprint check on both sides, OpenSSL's session cache off.
"""

from __future__ import annotations

import argparse
import contextlib
import hmac
import statistics
import time
from collections.abc import Callable
from typing import Any

from OpenSSL import SSL, crypto

from webrtc_secure import Certificate
from webrtc_secure.certificate import Fingerprint
from webrtc_secure.dtls import CipherSuite, DtlsConnection, NamedGroup
from webrtc_secure.dtls.groups import Group
from webrtc_secure.dtls.listener import DtlsListener
from webrtc_secure.dtls.suites13 import CipherSuite13
from webrtc_secure.srtp import Profile

SUITE = CipherSuite.ECDHE_ECDSA_AES_128_GCM_SHA256
SUITE13 = CipherSuite13.TLS_AES_128_GCM_SHA256
OPENSSL_SUITE = b"ECDHE-ECDSA-AES128-GCM-SHA256"
PROFILES = (Profile.AEAD_AES_128_GCM, Profile.AES128_CM_HMAC_SHA1_80)
OPENSSL_PROFILES = b"SRTP_AEAD_AES_128_GCM:SRTP_AES128_CM_SHA1_80"
MTU = 1200
#: records per DtlsConnection.send_many call in the batched application data row
BATCH = 8


def _interleaved(
    ours: Callable[[], object], ref: Callable[[], object], rounds: int
) -> tuple[float, float]:
    """Median CPU seconds of one call of each, sampled alternately."""
    samples: tuple[list[float], list[float]] = ([], [])
    for i in range(rounds):
        order = ((0, ours), (1, ref)) if i % 2 == 0 else ((1, ref), (0, ours))
        for side, fn in order:
            start = time.process_time()
            fn()
            samples[side].append(time.process_time() - start)
    medians = []
    for side_samples in samples:
        side_samples.sort()
        medians.append(side_samples[len(side_samples) // 2])
    return medians[0], medians[1]


_FINGERPRINTS: dict[int, list[Fingerprint]] = {}


def _fingerprints(cert: Certificate) -> list[Fingerprint]:
    """The peer fingerprints an application has from the SDP before it connects."""
    if id(cert) not in _FINGERPRINTS:
        _FINGERPRINTS[id(cert)] = cert.fingerprints()
    return _FINGERPRINTS[id(cert)]


def _ours_pair(
    a: Certificate,
    b: Certificate,
    group: NamedGroup,
    cookies: bool = False,
    group13: int | None = None,
) -> tuple[DtlsConnection, DtlsConnection]:
    """Our pair under DTLS 1.2 on ``group``, or under DTLS 1.3 on ``group13``."""
    a_fp, b_fp = _fingerprints(a), _fingerprints(b)
    version: dict[str, Any] = (
        {"dtls_versions": ("1.2",)}
        if group13 is None
        else {"dtls_versions": ("1.3",), "groups13": [group13], "cipher_suites13": [SUITE13]}
    )
    client = DtlsConnection(
        True,
        a,
        cipher_suites=[SUITE],
        groups=[group],
        srtp_profiles=PROFILES,
        remote_fingerprints=b_fp,
        mtu=MTU,
        **version,
    )
    server = DtlsConnection(
        False,
        b,
        cipher_suites=[SUITE],
        groups=[group],
        srtp_profiles=PROFILES,
        remote_fingerprints=a_fp,
        mtu=MTU,
        cookies=cookies,
        **version,
    )
    client.connect(0.0)
    for _ in range(10):
        for x, y in ((client, server), (server, client)):
            for d in x.datagrams_to_send(0.0):
                y.receive_datagram(d, 0.0)
        if client.is_connected and server.is_connected:
            return client, server
    raise RuntimeError("our handshake did not complete")


#: one-way delay of the simulated path in the round-trip rows (no jitter, no loss)
ONE_WAY = 0.010


def _connected_at(
    a: Certificate, b: Certificate, versions: tuple[str, ...], group13: Group | None
) -> tuple[float, float, int]:
    """When (fake seconds) the client and the server report connected through a path
    of ``ONE_WAY`` each way, and how many flights went out before the client did."""
    from tests.netsim import NetSim, run_handshake

    options13: dict[str, Any] = {} if group13 is None else {"groups13": [group13]}
    client = DtlsConnection(
        True, a, remote_fingerprints=_fingerprints(b), dtls_versions=versions, **options13
    )
    server = DtlsConnection(
        False,
        b,
        remote_fingerprints=_fingerprints(a),
        dtls_versions=versions,
        cookies=False,  # SecurePeer's setting: ICE already proved the path
        **options13,
    )
    result = run_handshake(client, server, NetSim(0, delay=ONE_WAY), max_time=10.0)
    assert result.completed and result.a.done_at is not None and result.b.done_at is not None
    assert client.version_name == f"DTLS {versions[0]}"
    start = result.pump.started_at
    # the flights both sides sent (an ACK is not one): each is one one-way trip here
    flights = client.stats.flights_sent + server.stats.flights_sent
    return result.a.done_at - start, result.b.done_at - start, flights


def _round_trips_to_connected(a: Certificate, b: Certificate) -> list[dict[str, Any]]:
    """Round trips to connected, DTLS 1.3 against our 1.2, both without cookies (as
    SecurePeer runs over ICE), on a simulated path with a fixed one-way delay and a
    fake clock: the times are path time only (no CPU), so they are exact."""
    rtt = 2 * ONE_WAY
    client12, server12, flights12 = _connected_at(a, b, ("1.2",), None)
    rows = []
    for group13 in (Group.X25519, Group.X25519MLKEM768):
        client13, server13, flights13 = _connected_at(a, b, ("1.3",), group13)
        rows.append(
            {
                "benchmark": (
                    f"dtls 1.3 flights until both sides are connected ({group13.name.lower()})"
                ),
                "ours": flights13,
                "reference": flights12,
                "ratio": flights13 / flights12,
                "goal": "",
                "reference_name": "ours, DTLS 1.2 x25519",
            }
        )
        for who, ours, ref in (
            ("client", client13, client12),
            ("both sides", max(client13, server13), max(client12, server12)),
        ):
            rows.append(
                {
                    "benchmark": (
                        f"dtls 1.3 round trips to connected, {who} ({group13.name.lower()}, "
                        f"{ONE_WAY * 1e3:g} ms one-way, fake clock)"
                    ),
                    "ours": ours / rtt,
                    "reference": ref / rtt,
                    "ratio": ours / ref,
                    "goal": "1.3 saves one" if who == "client" else "",
                    "reference_name": "ours, DTLS 1.2 x25519",
                }
            )
    return rows


def _accept_self_signed(*_args: object) -> bool:
    return True


def _openssl_context(cert: Certificate, group: NamedGroup) -> SSL.Context:
    ctx = SSL.Context(SSL.DTLS_METHOD)
    ctx.use_certificate(crypto.X509.from_cryptography(cert.x509))
    ctx.use_privatekey(crypto.PKey.from_cryptography_key(cert.private_key))
    ctx.set_verify(SSL.VERIFY_PEER | SSL.VERIFY_FAIL_IF_NO_PEER_CERT, _accept_self_signed)
    ctx.set_cipher_list(OPENSSL_SUITE)
    ctx.set_tlsext_use_srtp(OPENSSL_PROFILES)
    ctx.set_options(SSL.OP_NO_QUERY_MTU | SSL.OP_NO_TICKET)
    ctx.set_session_cache_mode(SSL.SESS_CACHE_OFF)
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


def _fingerprint_ok(conn: SSL.Connection, expected: bytes) -> bool:
    peer = conn.get_peer_certificate()
    return peer is not None and hmac.compare_digest(peer.digest("sha256"), expected)


def _openssl_pair(
    ca: SSL.Context, sa: SSL.Context, client_fp: bytes, server_fp: bytes
) -> tuple[SSL.Connection, SSL.Connection]:
    """``client_fp``/``server_fp``: the expected fingerprints of each side's certificate
    in pyOpenSSL's ``digest`` form, checked by the other side after the handshake."""
    client, server = SSL.Connection(ca, None), SSL.Connection(sa, None)
    for c in (client, server):
        c.set_ciphertext_mtu(MTU)
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
            if not (_fingerprint_ok(client, server_fp) and _fingerprint_ok(server, client_fp)):
                raise RuntimeError("OpenSSL peer fingerprint mismatch")
            return client, server
    raise RuntimeError("OpenSSL handshake did not complete")


def _openssl_fp(cert: Certificate) -> bytes:
    return crypto.X509.from_cryptography(cert.x509).digest("sha256")


def _check_same_negotiation(
    ours: tuple[DtlsConnection, DtlsConnection],
    ref: tuple[SSL.Connection, SSL.Connection],
    group: NamedGroup,
) -> None:
    """Both stacks must agree on what the row claims they do."""
    for conn in ours:
        hs = conn._handshake
        assert conn.cipher_suite == SUITE and hs.group == group, (conn.cipher_suite, hs.group)
        assert conn.srtp_profile == Profile.AEAD_AES_128_GCM and conn.extended_master_secret
    openssl_group = {NamedGroup.X25519: "x25519", NamedGroup.SECP256R1: "secp256r1"}[group]
    for oconn in ref:
        assert oconn.get_cipher_name() == "ECDHE-ECDSA-AES128-GCM-SHA256"
        assert oconn.get_selected_srtp_profile() == b"SRTP_AEAD_AES_128_GCM"
        name = (oconn.get_group_name() or "").lower()
        assert name in (openssl_group, "prime256v1" if openssl_group == "secp256r1" else ""), name


def run(quick: bool = False) -> list[dict[str, Any]]:
    rounds = 15 if quick else 61
    rows: list[dict[str, Any]] = []
    a, b = Certificate.generate(), Certificate.generate()
    fp_a, fp_b = _openssl_fp(a), _openssl_fp(b)
    for group in (NamedGroup.X25519, NamedGroup.SECP256R1):
        ctx_a, ctx_b = _openssl_context(a, group), _openssl_context(b, group)
        _check_same_negotiation(
            _ours_pair(a, b, group), _openssl_pair(ctx_a, ctx_b, fp_a, fp_b), group
        )
        ours, ref = _interleaved(
            lambda g=group: _ours_pair(a, b, g),
            lambda ca=ctx_a, cb=ctx_b: _openssl_pair(ca, cb, fp_a, fp_b),
            rounds,
        )
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

    # DTLS 1.3 (x25519, and the X25519MLKEM768 hybrid) next to our own DTLS 1.2 on
    # x25519, same run; and the flights each needs to connect, counted the same way
    for group13 in (Group.X25519, Group.X25519MLKEM768):
        ours13, ours12 = _interleaved(
            lambda g=group13: _ours_pair(a, b, NamedGroup.X25519, group13=g),
            lambda: _ours_pair(a, b, NamedGroup.X25519),
            rounds,
        )
        rows.append(
            {
                "benchmark": f"dtls 1.3 handshake CPU ms ({group13.name.lower()})",
                "ours": ours13 * 1e3,
                "reference": ours12 * 1e3,
                "ratio": ours13 / ours12,
                "goal": "",
                "reference_name": "ours, DTLS 1.2 x25519",
            }
        )

    rows += _round_trips_to_connected(a, b)

    # handshakes per second one server completes (cookies on: 3 round trips)
    listener_cert = Certificate.generate()
    n = 30 if quick else 100
    listener = DtlsListener(
        listener_cert,
        cipher_suites=[SUITE],
        remote_fingerprints=_fingerprints(a),
        dtls_versions=("1.2",),
    )
    server_cpu = 0.0
    for i in range(n):
        addr = ("127.0.0.1", 10000 + i)
        client = DtlsConnection(
            True,
            a,
            cipher_suites=[SUITE],
            remote_fingerprints=_fingerprints(listener_cert),
            dtls_versions=("1.2",),
        )
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
    count = 1000 if quick else 2000
    c, s = _ours_pair(a, b, NamedGroup.X25519)
    oc, os_ = _openssl_pair(
        _openssl_context(a, NamedGroup.X25519), _openssl_context(b, NamedGroup.X25519), fp_a, fp_b
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

        ours_s, ref_s = _interleaved(ours_run, ref_run, 7 if quick else 15)
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

    rows += app_data13_rows(a, b, c, s, count, 7 if quick else 15)
    return rows


def _records_one_at_a_time(
    sender: DtlsConnection, receiver: DtlsConnection, payload: bytes, count: int
) -> Callable[[], None]:
    """A sample: ``count`` records sent one ``send`` at a time, each received."""

    def run() -> None:
        for _ in range(count):
            sender.send(payload)
            for d in sender.datagrams_to_send(0.0):
                receiver.receive_datagram(d, 0.0)
            receiver.next_event()

    return run


def _records_in_flushes(
    sender: DtlsConnection, receiver: DtlsConnection, batch: list[bytes], flushes: int
) -> Callable[[], None]:
    """A sample: ``flushes`` batches sent with ``send_many`` (as SCTP flushes), each
    received and its events taken."""

    def run() -> None:
        for _ in range(flushes):
            sender.send_many(batch)
            for d in sender.datagrams_to_send(0.0):
                receiver.receive_datagram(d, 0.0)
            while receiver.next_event() is not None:
                pass

    return run


def app_data13_rows(
    a: Certificate,
    b: Certificate,
    c12: DtlsConnection,
    s12: DtlsConnection,
    count: int,
    rounds: int,
) -> list[dict[str, Any]]:
    """DTLS 1.3 application data (unified header, record number encryption) against
    our DTLS 1.2 pair ``c12``/``s12``: ``count`` 1200-byte records per sample, the two
    versions' samples interleaved for ``rounds`` rounds, each side's median."""
    payload = b"\xa5" * 1200
    rows: list[dict[str, Any]] = []
    c13, s13 = _ours_pair(a, b, NamedGroup.X25519, group13=Group.X25519)
    for direction, (sender, receiver, sender12, receiver12) in {
        "client->server": (c13, s13, c12, s12),
        "server->client": (s13, c13, s12, c12),
    }.items():
        s13_s, s12_s = _interleaved(
            _records_one_at_a_time(sender, receiver, payload, count),
            _records_one_at_a_time(sender12, receiver12, payload, count),
            rounds,
        )
        mb = count * len(payload) / 1e6
        rows.append(
            {
                "benchmark": f"dtls 1.3 app data MB/s 1200 B ({direction}, send+receive)",
                "ours": mb / s13_s,
                "reference": mb / s12_s,
                "ratio": s12_s / s13_s,
                "goal": ">= 0.9",
                "reference_name": "ours, DTLS 1.2",
            }
        )

    # a flush of SCTP packets: send_many of BATCH records, then the receiver takes them
    # (DTLS 1.3 protects a batch with one AES-ECB call for its masks; 1.2 has nothing
    # to share and sends one record at a time)
    batch = [payload] * BATCH
    s13_s, s12_s = _interleaved(
        _records_in_flushes(c13, s13, batch, count // BATCH),
        _records_in_flushes(c12, s12, batch, count // BATCH),
        rounds,
    )
    mb = count // BATCH * BATCH * len(payload) / 1e6
    rows.append(
        {
            "benchmark": (
                f"dtls 1.3 app data MB/s 1200 B (client->server, send_many of {BATCH} + receive)"
            ),
            "ours": mb / s13_s,
            "reference": mb / s12_s,
            "ratio": s12_s / s13_s,
            "goal": "",
            "reference_name": "ours, DTLS 1.2",
        }
    )
    return rows


def _app_data13_only(repeats: int, count: int, rounds: int) -> None:
    """``--app13``: only the DTLS 1.3 against 1.2 application data rows, ``repeats``
    times in this process, each repeat's ratios and the medians of them."""
    a, b = Certificate.generate(), Certificate.generate()
    c12, s12 = _ours_pair(a, b, NamedGroup.X25519)
    ratios: dict[str, list[float]] = {}
    for i in range(repeats):
        for row in app_data13_rows(a, b, c12, s12, count, rounds):
            ratios.setdefault(row["benchmark"], []).append(row["ratio"])
            print(
                f"repeat {i + 1}: {row['benchmark']}: 1.3 {row['ours']:.0f} MB/s, "
                f"1.2 {row['reference']:.0f} MB/s, ratio {row['ratio']:.3f}"
            )
    for name, values in ratios.items():
        print(f"median of {repeats}: {name}: {statistics.median(values):.3f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--app13", action="store_true", help="only the DTLS 1.3 against 1.2 app data rows"
    )
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    if args.app13:
        _app_data13_only(args.repeats, args.count, args.rounds)
    else:
        for row in run(quick=True):
            print(row)
