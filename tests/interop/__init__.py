"""Interop harness: OpenSSL peers with the same sans-I/O face as
:class:`webrtc_secure.dtls.DtlsConnection`, so our engine can be put opposite them.

* :mod:`tests.interop.pyopenssl_peer` -- ``PyOpenSslDtls``: OpenSSL (through pyOpenSSL,
  memory BIOs) as an engine: ``connect / receive_datagram / datagrams_to_send /
  get_timer / handle_timer / next_event / send / close``, plus ``peer_certificate``,
  ``cipher_suite``, ``cipher_name``, ``srtp_profile``, ``export_keying_material``.
* :mod:`tests.interop.openssl_cli` -- ``openssl s_server`` / ``s_client`` subprocesses
  on 127.0.0.1 UDP (``openssl_server``, ``openssl_client``) and ``UdpEndpoint``, which
  drives any engine over a real UDP socket with the engine's own timer.

Related: :mod:`tests.netsim` (fake-clock network faults between two engines) and
:mod:`tests.browser_hello` (byte-exact browser-shaped ClientHellos).
"""
