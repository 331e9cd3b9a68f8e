"""Interop harness: OpenSSL peers (pyOpenSSL in memory, the openssl command line over UDP)
with the same sans-I/O face as :class:`webrtc_secure.dtls.DtlsConnection`."""
