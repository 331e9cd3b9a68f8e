"""``python -m webrtc_secure dtls``: errors are one line and an exit status, never a
traceback; options are checked before any packet leaves; SRTP profiles are accepted in
every spelling the CLI, the RFCs and OpenSSL use; ``-v`` shows progress; and suites and
profiles read as names wherever a user sees them (issue 13).

Every test runs the real command as a subprocess, on loopback only."""

from __future__ import annotations

import argparse
import os
import re
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.dtls_pair import cert, drain_events, pins, run
from tests.interop.openssl_cli import OpenSslCliPeer, write_credentials
from webrtc_secure import ConfigurationError, cli_dtls, cli_echo
from webrtc_secure.dtls import DtlsConnection, HandshakeComplete
from webrtc_secure.dtls.suites import CipherSuite
from webrtc_secure.srtp import Profile
from webrtc_secure.srtp.profiles import parse_profile, parse_profiles

INSECURE = "--insecure-skip-fingerprint-check"
_PORT = re.compile(rb"listening on 127\.0\.0\.1:(\d+)")
_LOCAL_FP = re.compile(rb"local-fingerprint sha-256 ([0-9A-F:]+)")


def dtls(*argv: str, timeout: float = 20) -> subprocess.CompletedProcess[str]:
    """Run ``python -m webrtc_secure ARGV`` to its end with stdin at EOF."""
    return subprocess.run(
        [sys.executable, "-m", "webrtc_secure", *argv],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=dict(os.environ, COLUMNS="400"),
    )


def assert_one_line_error(
    result: subprocess.CompletedProcess[str], status: int, pattern: str
) -> None:
    """Exit status ``status`` and stderr exactly one line matching ``pattern``."""
    lines = result.stderr.splitlines()
    assert "Traceback" not in result.stderr, result.stderr
    assert len(lines) == 1, result.stderr
    assert re.search(pattern, lines[0]), lines[0]
    assert result.returncode == status, result.stderr


@pytest.fixture
def udp_sink() -> Iterator[socket.socket]:
    """A bound UDP socket on loopback: a port in use, and a witness of what was sent."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.setblocking(False)
        yield sock


def _closed_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_ipv6_addresses_print_as_the_address_argument_takes_them() -> None:
    with _cli("listen", "[::1]:0", INSECURE) as server:
        port = server.wait_for(re.compile(rb"listening on \[::1\]:(\d+)")).group(1).decode()
        result = dtls("dtls", "connect", f"[::1]:{port}", INSECURE, "--timeout", "10")
        assert result.returncode == 0, result.stderr
        assert "peer [::1]:" in result.stderr
    result = dtls("dtls", "listen", "[2001:db8::1]:0", INSECURE)  # documentation prefix
    assert_one_line_error(result, 1, r"cannot listen on \[2001:db8::1\]:0: .*not an address")


# --- one-line errors with an exit status ----------------------------------------------------


@pytest.mark.parametrize("address", ["127.0.0.1:70000", "127.0.0.1:99999999999999999999"])
def test_port_out_of_range_is_a_usage_error(address: str) -> None:
    assert_one_line_error(dtls("dtls", "listen", address, INSECURE), 2, r"port .* out of range")


def test_connect_to_port_zero_is_refused() -> None:
    assert_one_line_error(dtls("dtls", "connect", "127.0.0.1:0", INSECURE), 1, r"port in 1\.\.")


def test_listening_on_an_address_not_on_this_host() -> None:
    # 192.0.2.0/24 is TEST-NET-1: documentation only, never assigned to an interface
    result = dtls("dtls", "listen", "192.0.2.1:0", INSECURE)
    assert_one_line_error(result, 1, r"^error: cannot listen on 192\.0\.2\.1:0: .*not an address")


def test_listening_on_a_port_in_use(udp_sink: socket.socket) -> None:
    port = udp_sink.getsockname()[1]
    result = dtls("dtls", "listen", f"127.0.0.1:{port}", INSECURE)
    assert_one_line_error(result, 1, rf"^error: cannot listen on .*: port {port} is in use")


@pytest.mark.parametrize("mtu", ["10", "149", "65508", "-1", "big"])
def test_impossible_mtu_is_a_usage_error(mtu: str) -> None:
    result = dtls("dtls", "connect", "127.0.0.1:9", INSECURE, f"--mtu={mtu}")
    assert_one_line_error(result, 2, r"argument --mtu: ")


def test_missing_certificate_file(tmp_path: Path) -> None:
    missing = tmp_path / "missing.pem"
    result = dtls(
        "dtls", "connect", "127.0.0.1:9", INSECURE, "--cert", str(missing), "--key", str(missing)
    )
    assert_one_line_error(result, 1, r"^error: cannot read certificate files: .*missing\.pem")


def test_unresolvable_host() -> None:
    # .invalid never resolves (RFC 6761 6.4); no query leaves a resolver that honours it
    result = dtls("dtls", "connect", "no-such-host.invalid:4444", INSECURE)
    assert_one_line_error(result, 1, r"^error: cannot resolve 'no-such-host\.invalid'")


@pytest.mark.parametrize(
    "spec",
    [
        "EXTRACTOR-dtls_srtp",
        "EXTRACTOR-dtls_srtp:",
        "EXTRACTOR-dtls_srtp:sixty",
        ":60",
        "EXTRACTOR-dtls_srtp:0",
        "EXTRACTOR-dtls_srtp:65536",
        "master secret:48",
        "key expansion:40",
        "EXTRACTOR-\u00e9:60",
    ],
)
def test_bad_export_is_refused_before_the_handshake(spec: str, udp_sink: socket.socket) -> None:
    port = udp_sink.getsockname()[1]
    result = dtls("dtls", "connect", f"127.0.0.1:{port}", INSECURE, "--export", spec)
    assert_one_line_error(result, 2, r"argument --export: ")
    # not a single ClientHello reached the peer
    with pytest.raises(BlockingIOError):
        udp_sink.recv(2048)


def test_an_error_is_printed_once_not_also_as_a_log_line() -> None:
    """A failed handshake: one line on each side, no WARNING log record repeating it."""
    with _cli("listen", "127.0.0.1:0", INSECURE) as server:
        port = server.wait_for(_PORT).group(1).decode()
        wrong = f"sha-256:{cert('mallory').fingerprint()}"
        with _cli("connect", f"127.0.0.1:{port}", "--fingerprint", wrong) as client:
            assert client.proc.wait(timeout=15) == 1
            server.wait_for(b"handshake failed")
            assert server.proc.wait(timeout=15) == 1
        client_out = client.output().decode()
        server_out = server.output().decode()
    # the client: its fingerprint, then the error, once
    client_lines = client_out.splitlines()
    assert client_lines[0].startswith("local-fingerprint ")
    assert client_lines[1:] == [
        "handshake failed: FingerprintMismatch: "
        "peer certificate does not match the remote fingerprint"
    ], client_out
    # the server: the client's alert, once (its other lines say other things)
    assert [line for line in server_out.splitlines() if "BAD_CERTIFICATE" in line] == [
        "handshake failed: AlertReceived: peer sent fatal alert BAD_CERTIFICATE"
    ], server_out
    assert "Traceback" not in client_out + server_out


# --- SRTP profile names ------------------------------------------------------------------


@pytest.mark.parametrize("profile", list(Profile), ids=lambda p: p.name)
def test_every_spelling_of_a_profile_parses(profile: Profile) -> None:
    spellings = {
        profile.name,  # what the CLI prints after the handshake
        str(profile),
        profile.rfc_name,  # RFC 5764 / RFC 7714
        profile.openssl_name,  # OpenSSL's -use_srtp
        profile.openssl_name.removeprefix("SRTP_"),
        profile.rfc_name.lower(),
    }
    for text in spellings:
        assert parse_profile(text) is profile, text


def test_the_rfc_and_openssl_names_are_the_registered_ones() -> None:
    assert Profile.AES128_CM_HMAC_SHA1_80.rfc_name == "SRTP_AES128_CM_HMAC_SHA1_80"
    assert Profile.AES128_CM_HMAC_SHA1_80.openssl_name == "SRTP_AES128_CM_SHA1_80"
    assert Profile.AES128_CM_HMAC_SHA1_32.openssl_name == "SRTP_AES128_CM_SHA1_32"
    assert Profile.AEAD_AES_256_GCM.rfc_name == "SRTP_AEAD_AES_256_GCM"
    assert Profile.AEAD_AES_256_GCM.openssl_name == "SRTP_AEAD_AES_256_GCM"


@pytest.mark.parametrize("text", ["", ":", "SRTP_NULL_HMAC_SHA1_80", "AES128_CM", "7", "SRTP_"])
def test_unknown_profile_names_are_configuration_errors(text: str) -> None:
    with pytest.raises(ConfigurationError):
        parse_profiles(text)


def test_a_profile_listed_twice_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="twice"):
        parse_profiles("SRTP_AES128_CM_SHA1_80:SRTP_AES128_CM_HMAC_SHA1_80")


@pytest.mark.parametrize(
    "client_spelling",
    ["SRTP_AES128_CM_HMAC_SHA1_80", "SRTP_AES128_CM_SHA1_80", "AES128_CM_HMAC_SHA1_80"],
    ids=["rfc", "openssl", "printed"],
)
def test_cli_handshakes_with_each_spelling(client_spelling: str) -> None:
    # the listener is given the name the CLI printed for the profile
    with _cli(
        "listen", "127.0.0.1:0", INSECURE, "--srtp-profiles", "AES128_CM_HMAC_SHA1_80"
    ) as server:
        port = server.wait_for(_PORT).group(1).decode()
        server_fp = server.wait_for(_LOCAL_FP).group(1).decode()
        with _cli(
            "connect",
            f"127.0.0.1:{port}",
            "--fingerprint",
            f"sha-256:{server_fp}",
            "--srtp-profiles",
            f"SRTP_AEAD_AES_256_GCM:{client_spelling}",
        ) as client:
            client.wait_for(b"srtp-profile AES128_CM_HMAC_SHA1_80")
            server.wait_for(b"srtp-profile AES128_CM_HMAC_SHA1_80")
            assert client.proc.stdin is not None
            client.proc.stdin.close()
            assert client.proc.wait(timeout=10) == 0


def test_unknown_profile_is_a_usage_error_listing_the_valid_ones() -> None:
    result = dtls("dtls", "connect", "127.0.0.1:9", INSECURE, "--srtp-profiles", "SRTP_NULL")
    assert_one_line_error(result, 2, r"unknown SRTP profile 'SRTP_NULL'")
    for profile in Profile:
        assert profile.rfc_name in result.stderr
        assert profile.openssl_name in result.stderr


# --- help ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "add",
    [cli_dtls.add_arguments, cli_echo.add_echo_arguments, cli_echo.add_demo_arguments],
    ids=["dtls", "echo", "echo-demo"],
)
def test_every_option_has_help_with_its_default(
    add: Callable[[argparse.ArgumentParser], None],
) -> None:
    parser = argparse.ArgumentParser()
    add(parser)
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        assert action.help, action.dest
        if action.option_strings:
            assert "default" in action.help or action.required, action.option_strings


def test_help_names_the_valid_profiles_and_defaults() -> None:
    result = dtls("dtls", "--help")
    assert result.returncode == 0
    text = result.stdout
    for profile in Profile:
        assert profile.rfc_name in text
        assert profile.openssl_name in text
    assert "(default: 1200)" in text
    assert "(default: 30.0)" in text


# --- -v shows progress ------------------------------------------------------------------------


def test_verbose_shows_progress_when_nothing_listens() -> None:
    port = _closed_udp_port()
    result = dtls("-v", "dtls", "connect", f"127.0.0.1:{port}", INSECURE, "--timeout", "2.5")
    err = result.stderr
    assert result.returncode == 1, err
    assert "resolving 127.0.0.1" in err
    assert "flight 1 sent" in err
    assert "retransmission 1: flight 1 unanswered" in err
    # the ICMP port unreachable loopback returns is reported, and named in the error
    assert "Connection refused" in err
    assert re.search(r"handshake failed: HandshakeTimeout: .*is the peer listening", err), err
    assert err.count("handshake failed") == 1


def test_verbose_after_the_subcommand_works_too() -> None:
    port = _closed_udp_port()
    result = dtls("dtls", "connect", f"127.0.0.1:{port}", INSECURE, "--timeout", "1", "-v")
    assert "flight 1 sent" in result.stderr


def test_quiet_by_default() -> None:
    port = _closed_udp_port()
    result = dtls("dtls", "connect", f"127.0.0.1:{port}", INSECURE, "--timeout", "1")
    assert "flight 1 sent" not in result.stderr
    assert "handshake failed" in result.stderr


# --- names, not numbers ------------------------------------------------------------------


def test_profiles_and_suites_print_as_names() -> None:
    profile = Profile.AEAD_AES_128_GCM
    suite = CipherSuite.ECDHE_ECDSA_AES_128_GCM_SHA256
    # %-formatting is what logging does with its arguments
    assert str(profile) == f"{profile}" == "%s" % profile == "AEAD_AES_128_GCM"  # noqa: UP031
    assert str(suite) == f"{suite}" == "ECDHE_ECDSA_AES_128_GCM_SHA256"
    # the number stays one format away, and the values are unchanged
    assert f"{profile:d}" == "%d" % profile == "7" and int(profile) == 7  # noqa: UP031
    assert f"{suite:04x}" == "c02b" and suite == 49195
    assert f"{suite:>32}" == "  ECDHE_ECDSA_AES_128_GCM_SHA256"


@pytest.mark.parametrize(
    ("versions", "suite"),
    [(("1.3", "1.2"), "TLS_AES_128_GCM_SHA256"), (("1.2",), "ECDHE_ECDSA_AES_128_GCM_SHA256")],
)
def test_the_handshake_event_prints_names(versions: tuple[str, ...], suite: str) -> None:
    client = DtlsConnection(
        True, cert("client"), remote_fingerprints=pins("server"), dtls_versions=versions
    )
    server = DtlsConnection(
        False,
        cert("server"),
        cookies=False,
        remote_fingerprints=pins("client"),
        dtls_versions=versions,
    )
    run(client, server)
    event = next(e for e in drain_events(client) if isinstance(e, HandshakeComplete))
    line = f"{event.cipher_suite} {event.srtp_profile}"
    assert line == f"{suite} AEAD_AES_128_GCM"
    assert str(client.srtp_profile) == "AEAD_AES_128_GCM"
    assert f"{client.cipher_suite:04x}" == f"{int(client.cipher_suite):04x}"


# --- helpers ------------------------------------------------------------------------------


def _cli(*argv: str) -> OpenSslCliPeer:
    return OpenSslCliPeer([sys.executable, "-m", "webrtc_secure", "dtls", *argv, "--timeout", "10"])


def test_helper_write_credentials_round_trip(tmp_path: Path) -> None:
    # the certificate loading path the error test above fails: here it succeeds
    cert_path, key_path = write_credentials(cert("ours"), tmp_path)
    args = argparse.ArgumentParser()
    cli_dtls.add_arguments(args)
    ns = args.parse_args(
        ["connect", "127.0.0.1:9", INSECURE, "--cert", str(cert_path), "--key", str(key_path)]
    )
    assert cli_dtls.load_certificate(ns).der == cert("ours").der
