"""Fail closed: a DTLS endpoint that has no way to authenticate its peer is refused when
it is built, and running unauthenticated is an explicit, logged opt-in.

Before this, ``DtlsConnection`` without ``remote_fingerprints`` (or with an empty list)
completed a handshake with any certificate, a man-in-the-middle's included."""

from __future__ import annotations

import argparse
import asyncio
import logging
import re
import sys
from typing import Any

import pytest

from tests.dtls_pair import DtlsConnection12, cert, drain_events, pins, run
from tests.interop.openssl_cli import OpenSslCliPeer
from webrtc_secure import ConfigurationError, WebrtcSecureError, cli_dtls
from webrtc_secure.dtls import AlertDescription, HandshakeComplete, State
from webrtc_secure.dtls.listener import DtlsListener
from webrtc_secure.errors import FingerprintMismatch, HandshakeFailure

ROLES = pytest.mark.parametrize("is_client", [True, False], ids=["client", "server"])


# --- construction -------------------------------------------------------------------------


@ROLES
def test_no_fingerprints_is_a_configuration_error(is_client: bool) -> None:
    with pytest.raises(ConfigurationError, match="remote_fingerprints") as caught:
        DtlsConnection12(is_client, cert("client" if is_client else "server"))
    # typed: one catch of WebrtcSecureError handles it, and it is no bare ValueError
    assert isinstance(caught.value, WebrtcSecureError)
    assert not isinstance(caught.value, ValueError)


@ROLES
@pytest.mark.parametrize("empty", [[], ()], ids=["list", "tuple"])
def test_empty_fingerprints_is_a_configuration_error(is_client: bool, empty: Any) -> None:
    with pytest.raises(ConfigurationError, match="insecure_skip_fingerprint_check"):
        DtlsConnection12(is_client, cert("x"), remote_fingerprints=empty)


@ROLES
def test_fingerprint_text_instead_of_fingerprint_objects_is_refused(is_client: bool) -> None:
    text = f"sha-256 {cert('server').fingerprint()}"
    for wrong in (text, [text], text.encode()):
        with pytest.raises(ConfigurationError, match="Fingerprint"):
            DtlsConnection12(is_client, cert("x"), remote_fingerprints=wrong)


@ROLES
def test_the_opt_in_cannot_be_combined_with_a_check(is_client: bool) -> None:
    with pytest.raises(ConfigurationError, match="contradicts"):
        DtlsConnection12(
            is_client,
            cert("x"),
            remote_fingerprints=pins("y"),
            insecure_skip_fingerprint_check=True,
        )
    with pytest.raises(ConfigurationError, match="contradicts"):
        DtlsConnection12(
            is_client, cert("x"), verify_peer=lambda der: True, insecure_skip_fingerprint_check=True
        )


def test_a_server_that_lets_anonymous_clients_in_needs_the_opt_in() -> None:
    # without a client certificate there is nothing to compare the fingerprints with
    with pytest.raises(ConfigurationError, match="anonymous"):
        DtlsConnection12(
            False,
            cert("server"),
            remote_fingerprints=pins("client"),
            require_client_certificate=False,
        )
    DtlsConnection12(
        False,
        cert("server"),
        require_client_certificate=False,
        insecure_skip_fingerprint_check=True,
    )


def test_a_listener_without_fingerprints_is_refused_when_built() -> None:
    # not at the first cookie-verified hello, inside receive_datagram
    with pytest.raises(ConfigurationError):
        DtlsListener(cert("server"))
    with pytest.raises(ConfigurationError):
        DtlsListener(cert("server"), remote_fingerprints=[])
    DtlsListener(cert("server"), remote_fingerprints=pins("client"))
    DtlsListener(cert("server"), insecure_skip_fingerprint_check=True)


# --- handshakes -------------------------------------------------------------------------


def test_the_opt_in_completes_with_any_certificate_and_says_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="webrtc_secure.dtls.connection"):
        client = DtlsConnection12(True, cert("client"), insecure_skip_fingerprint_check=True)
        server = DtlsConnection12(
            False, cert("stranger"), cookies=False, insecure_skip_fingerprint_check=True
        )
    warnings = [r for r in caplog.records if "NOT authenticated" in r.getMessage()]
    assert [r.levelno for r in warnings] == [logging.WARNING, logging.WARNING]
    run(client, server)
    assert client.is_connected and server.is_connected
    assert client.peer_certificate == cert("stranger").der
    assert server.peer_certificate == cert("client").der
    assert any(isinstance(e, HandshakeComplete) for e in drain_events(client))


@ROLES
def test_a_wrong_fingerprint_still_fails(is_client: bool) -> None:
    # the checking side pins a third party; the other side runs with the opt-in
    wrong = pins("mallory")
    checking = DtlsConnection12(is_client, cert("a"), cookies=False, remote_fingerprints=wrong)
    other = DtlsConnection12(
        not is_client, cert("b"), cookies=False, insecure_skip_fingerprint_check=True
    )
    client, server = (checking, other) if is_client else (other, checking)
    run(client, server, max_time=10.0)
    assert isinstance(checking.error, FingerprintMismatch)
    assert checking.error.alert == AlertDescription.BAD_CERTIFICATE
    assert checking.state is State.FAILED and not other.is_connected
    assert not any(isinstance(e, HandshakeComplete) for e in drain_events(checking))


@ROLES
def test_a_verify_callback_alone_authenticates(is_client: bool) -> None:
    for accept in (True, False):
        seen: list[bytes] = []

        def verify(der: bytes, accept: bool = accept, seen: list[bytes] = seen) -> bool:
            seen.append(der)
            return accept

        checking = DtlsConnection12(is_client, cert("checker"), cookies=False, verify_peer=verify)
        other = DtlsConnection12(
            not is_client, cert("peer"), cookies=False, remote_fingerprints=pins("checker")
        )
        client, server = (checking, other) if is_client else (other, checking)
        run(client, server, max_time=10.0)
        assert seen == [cert("peer").der]
        if accept:
            assert checking.is_connected and other.is_connected
        else:
            assert isinstance(checking.error, HandshakeFailure)
            assert checking.error.alert == AlertDescription.BAD_CERTIFICATE


# --- the dtls command line ------------------------------------------------------------------


def _cli_args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    cli_dtls.add_arguments(parser)
    return parser.parse_args(list(argv))


def test_cli_needs_a_fingerprint_or_the_explicit_flag() -> None:
    # refused before any socket is opened
    with pytest.raises(SystemExit, match="--fingerprint"):
        asyncio.run(cli_dtls.run(_cli_args("connect", "127.0.0.1:9")))
    fp = f"sha-256:{cert('server').fingerprint()}"
    with pytest.raises(SystemExit, match="exclude each other"):
        asyncio.run(
            cli_dtls.run(
                _cli_args(
                    "connect",
                    "127.0.0.1:9",
                    "--fingerprint",
                    fp,
                    "--insecure-skip-fingerprint-check",
                )
            )
        )


def _cli(*argv: str) -> OpenSslCliPeer:
    return OpenSslCliPeer([sys.executable, "-m", "webrtc_secure", "dtls", *argv, "--timeout", "10"])


_LOCAL_FP = re.compile(rb"local-fingerprint sha-256 ([0-9A-F:]+)")
_PORT = re.compile(rb"listening on 127\.0\.0\.1:(\d+)")


def test_cli_insecure_listener_and_pinning_client_over_loopback() -> None:
    with _cli("listen", "127.0.0.1:0", "--insecure-skip-fingerprint-check") as server:
        port = server.wait_for(_PORT).group(1).decode()
        # a client pinning someone else fails ...
        wrong = f"sha-256:{cert('mallory').fingerprint()}"
        with _cli("connect", f"127.0.0.1:{port}", "--fingerprint", wrong) as client:
            client.wait_for(b"handshake failed: FingerprintMismatch")
            assert client.proc.wait(timeout=10) == 1
    with _cli("listen", "127.0.0.1:0", "--insecure-skip-fingerprint-check") as server:
        port = server.wait_for(_PORT).group(1).decode()
        server_fp = server.wait_for(_LOCAL_FP).group(1).decode()
        # ... and one pinning the listener's printed fingerprint completes
        right = f"sha-256:{server_fp}"
        with _cli("connect", f"127.0.0.1:{port}", "--fingerprint", right) as client:
            client.wait_for(b"peer-verified yes")
            server.wait_for(b"peer-verified NO (--insecure-skip-fingerprint-check)")
            client.write(b"pinned\n")
            server.wait_for(b"pinned\n")
            assert client.proc.stdin is not None
            client.proc.stdin.close()
            assert client.proc.wait(timeout=10) == 0


@pytest.mark.parametrize(
    ("client_versions", "protocol", "group"),
    [((), b"DTLSv1.3", b"X25519MLKEM768"), (("1.2",), b"DTLSv1.2", b"X25519")],
    ids=["default-1.3", "client-1.2-only"],
)
def test_cli_reports_the_negotiated_version_and_group(
    client_versions: tuple[str, ...], protocol: bytes, group: bytes
) -> None:
    """``dtls --dtls-version``: the listener speaks both (the default); a client limited
    to 1.2 gets 1.2 from it, a default one 1.3 with the hybrid. Both print it."""
    with _cli("listen", "127.0.0.1:0", "--insecure-skip-fingerprint-check") as server:
        port = server.wait_for(_PORT).group(1).decode()
        server_fp = server.wait_for(_LOCAL_FP).group(1).decode()
        options = [arg for v in client_versions for arg in ("--dtls-version", v)]
        with _cli(
            "connect", f"127.0.0.1:{port}", "--fingerprint", f"sha-256:{server_fp}", *options
        ) as client:
            client.wait_for(b"protocol " + protocol)
            client.wait_for(b"group " + group)
            server.wait_for(b"protocol " + protocol)
            client.write(b"versioned\n")
            server.wait_for(b"versioned\n")
            assert client.proc.stdin is not None
            client.proc.stdin.close()
            assert client.proc.wait(timeout=10) == 0
