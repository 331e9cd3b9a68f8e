"""The association nested in our DTLS engine, as RFC 8261 runs it: each SCTP packet is
one DTLS application-data record, each record one datagram. Both engines keep their
sans-I/O faces; a small composite drives them through tests/netsim.py with the path
MTU clamped to 1200 octets, so an SCTP packet that did not fit one record under that
MTU would be dropped by the link and the test would fail."""

from __future__ import annotations

import random
from typing import Any

import pytest

from tests.dtls_pair import cert
from tests.netsim import NetSim, Pump
from tests.sctp_pair import config
from webrtc_secure.dtls import DtlsConnection
from webrtc_secure.dtls.events import ApplicationData, HandshakeComplete
from webrtc_secure.sctp.association import Association
from webrtc_secure.sctp.events import AssociationClosed, MessageReceived


class SctpOverDtls:
    """One endpoint: SCTP packets go into DTLS records; records come out as packets."""

    def __init__(self, dtls: DtlsConnection, sctp: Association) -> None:
        self.dtls = dtls
        self.sctp = sctp
        self.records_in = 0

    def _drain_dtls(self, now: float) -> None:
        while (event := self.dtls.next_event()) is not None:
            if isinstance(event, HandshakeComplete):
                self.sctp.connect(now)  # both ends send INIT (RFC 8841 9.3)
            elif isinstance(event, ApplicationData):
                self.records_in += 1
                self.sctp.receive_datagram(event.data, now)

    def connect(self, now: float) -> None:
        self.dtls.connect(now)
        self._drain_dtls(now)

    def receive_datagram(self, data: bytes, now: float, addr: object = None) -> None:
        self.dtls.receive_datagram(data, now)
        self._drain_dtls(now)

    def datagrams_to_send(self, now: float) -> list[bytes]:
        if self.dtls.is_connected:
            for packet in self.sctp.datagrams_to_send(now):
                self.dtls.send(packet)
        return self.dtls.datagrams_to_send(now)

    def get_timer(self) -> float | None:
        timers = [t for t in (self.dtls.get_timer(), self.sctp.get_timer()) if t is not None]
        return min(timers) if timers else None

    def handle_timer(self, now: float) -> None:
        timer = self.dtls.get_timer()
        if timer is not None and timer <= now:
            self.dtls.handle_timer(now)
            self._drain_dtls(now)
        timer = self.sctp.get_timer()
        if timer is not None and timer <= now:
            self.sctp.handle_timer(now)

    def next_event(self) -> Any:
        return self.sctp.next_event()


@pytest.mark.parametrize("loss", [0.0, 0.1])
def test_messages_over_dtls_fit_a_1200_octet_path(loss: float) -> None:
    client = SctpOverDtls(
        DtlsConnection(True, cert("client"), random=random.Random(1).randbytes),
        Association(config(1, remote_max_message_size=0)),
    )
    server = SctpOverDtls(
        DtlsConnection(False, cert("server"), cookies=False, random=random.Random(2).randbytes),
        Association(config(2, remote_max_message_size=0)),
    )
    sim = NetSim(5, loss=loss, reorder=0.1, duplicate=0.02, delay=0.01, mtu=1200)
    pump = Pump(client, server, sim)
    pump.connect()
    rng = random.Random(9)
    sizes = [1, 1100, 1120, 1135, 1136, 1150, 1200, 5000, 70000, 200000]
    sizes += [rng.randint(1, 20000) for _ in range(30)]
    to_server = [rng.randbytes(n) for n in sizes]
    to_client = [rng.randbytes(n) for n in reversed(sizes)]
    for m in to_server:
        client.sctp.send(1, 53, m, sim.now)
    for m in to_client:
        server.sctp.send(2, 53, m, sim.now)

    def got(side: Any) -> list[bytes]:
        return [e.data for e in side.events if isinstance(e, MessageReceived)]

    assert pump.run_until(
        lambda: len(got(pump.b)) == len(to_server) and len(got(pump.a)) == len(to_client), 300
    )
    assert got(pump.b) == to_server and got(pump.a) == to_client
    for direction in sim.stats.values():
        assert direction.mtu_dropped == 0 and direction.largest <= 1200
    # Full-size SCTP packets did occur: the budget is used, not just respected.
    assert max(s.largest for s in sim.stats.values()) >= 1190
    assert client.sctp.stats.dropped["internal_error"] == 0
    client.sctp.shutdown(sim.now)
    assert pump.run_until(
        lambda: (
            any(isinstance(e, AssociationClosed) for e in pump.a.events)
            and any(isinstance(e, AssociationClosed) for e in pump.b.events)
        ),
        60,
    )
