"""OpenSSL's TLS 1.3 (pyOpenSSL, OpenSSL 4.0) over memory BIOs, with its key log.

No DTLS 1.3 implementation is available here (issue 12), but the TLS 1.3 key schedule,
AEAD record protection, handshake message bodies and the X25519MLKEM768 hybrid are the
same in TLS and DTLS 1.3 except for the label prefix and the record header. A TLS 1.3
peer whose secrets we can read (SSLKEYLOGFILE lines from the keylog callback) checks
those shared parts against a real implementation.
"""

from __future__ import annotations

from OpenSSL import SSL

from webrtc_secure import Certificate

TLS_RECORD_HEADER_LENGTH = 5


class OpenSslTls13:
    """One TLS 1.3 endpoint; bytes in with :meth:`receive`, bytes out of :meth:`take`."""

    def __init__(
        self,
        server: bool,
        certificate: Certificate | None = None,
        ciphersuites: str | None = None,
    ) -> None:
        ctx = SSL.Context(SSL.TLS_METHOD)
        ctx.set_min_proto_version(SSL.TLS1_3_VERSION)
        ctx.set_max_proto_version(SSL.TLS1_3_VERSION)
        if ciphersuites is not None:
            ctx.set_tls13_ciphersuites(ciphersuites.encode())
        #: NSS key-log label -> secret, as OpenSSL logged them
        self.key_log: dict[str, bytes] = {}
        self.client_random: bytes | None = None
        ctx.set_keylog_callback(self._log)
        if server:
            certificate = certificate or Certificate.generate()
            ctx.use_certificate(certificate.x509)
            ctx.use_privatekey(certificate.private_key)
        else:
            ctx.set_verify(SSL.VERIFY_NONE)
        self.connection = SSL.Connection(ctx, None)
        if server:
            self.connection.set_accept_state()
        else:
            self.connection.set_connect_state()
        self.done = False

    def _log(self, _connection: SSL.Connection, line: bytes) -> None:
        label, client_random, secret = line.decode().split()
        self.client_random = bytes.fromhex(client_random)
        self.key_log[label] = bytes.fromhex(secret)

    def step(self) -> None:
        """Advance the handshake as far as the input allows."""
        if self.done:
            return
        try:
            self.connection.do_handshake()
        except SSL.WantReadError:
            return
        self.done = True

    def receive(self, data: bytes) -> None:
        if data:  # pyOpenSSL refuses an empty write
            self.connection.bio_write(data)
        self.step()

    def take(self) -> bytes:
        """Everything OpenSSL wrote since the last call."""
        out = b""
        while True:
            try:
                chunk = self.connection.bio_read(65536)
            except SSL.WantReadError:
                return out
            if not chunk:
                return out
            out += chunk


def tls_records(stream: bytes) -> list[tuple[int, bytes]]:
    """Split a TLS byte stream into (content type, fragment) records."""
    records: list[tuple[int, bytes]] = []
    offset = 0
    while offset + TLS_RECORD_HEADER_LENGTH <= len(stream):
        length = int.from_bytes(stream[offset + 3 : offset + 5], "big")
        start = offset + TLS_RECORD_HEADER_LENGTH
        records.append((stream[offset], stream[start : start + length]))
        offset = start + length
    if offset != len(stream):
        raise AssertionError(f"TLS stream ends inside a record ({len(stream) - offset} left)")
    return records


def connected_pair(ciphersuites: str | None = None) -> tuple[OpenSslTls13, OpenSslTls13]:
    """An OpenSSL client and server after a complete TLS 1.3 handshake."""
    client = OpenSslTls13(False, ciphersuites=ciphersuites)
    server = OpenSslTls13(True, ciphersuites=ciphersuites)
    client.step()
    for _ in range(10):
        server.receive(client.take())
        client.receive(server.take())
        if client.done and server.done:
            # the server logs its last secrets once the client's Finished is in
            server.receive(client.take())
            return client, server
    raise AssertionError("OpenSSL TLS 1.3 handshake did not complete in memory")
