"""Reproducer (not a test, run by hand as root): one SACK per loop iteration's batch
of packets stalls Chromium under ACK loss.

Runs the exchange of tests/test_interop_chromium_idata_loss.py (I-DATA, two channels
each way, 64-250 KB messages) with 15 % of ALL the datagrams dropped at our side in both
directions (the test spares our SACK-only packets), and prints the run's report::

    PYTHONPATH=. .venv/bin/python tests/repro_sack_coalescing_chromium.py            # as shipped
    PYTHONPATH=. .venv/bin/python tests/repro_sack_coalescing_chromium.py immediate  # coalesce off

As shipped, ``SctpTransport.coalesce`` answers all the packets read in one iteration (up
to 32) with one SACK; when that SACK is lost, Chromium (its whole window outstanding)
sends nothing until its T3 timer fires (0.4 s, doubling up to about 3 s), and the
exchange does not finish in the test's 60 s (2026-12-06, three runs: 1, 4 and 6 of the
12 messages arrived). With ``coalesce`` off (a SACK every second packet, RFC 9260
6.2) it finished in 9.5-14.1 s (three runs).
See the note of 2026-12-06 in /work/wt/OWNERS9.md.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import tests.test_interop_chromium_idata_loss as exchange
import webrtc_secure.sctp_transport as sctp_transport
from tests.browser.netns import run_in_loopback_netns
from tests.loss_injection import inbound_filter
from webrtc_secure.dtls_transport import DtlsTransport


def main(argv: list[str]) -> None:
    exchange.IN_LOSS = exchange.OUT_LOSS = 0.15
    exchange.OUT_MIN_SIZE = 0  # our SACK-only packets are dropped too
    if argv == ["immediate"]:
        init = sctp_transport.SctpTransport.__init__

        def no_coalesce(self: sctp_transport.SctpTransport, *args: Any, **kwargs: Any) -> None:
            init(self, *args, **kwargs)
            self.coalesce = False

        setattr(sctp_transport.SctpTransport, "__init__", no_coalesce)  # noqa: B010
    keylog = Path(tempfile.mkdtemp()) / "keylog"
    os.environ["SSLKEYLOGFILE"] = str(keylog)
    received = inbound_filter(DtlsTransport.datagram_received, exchange.CURRENT)
    setattr(DtlsTransport, "datagram_received", received)  # noqa: B010
    outcome = run_in_loopback_netns(
        lambda: exchange.scenario(keylog, (exchange.IDATA_FLAG,), True), timeout=120
    )
    print(exchange._report(outcome))


if __name__ == "__main__":
    main(sys.argv[1:])
