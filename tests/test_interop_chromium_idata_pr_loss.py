"""Partially reliable data channels over I-DATA (RFC 8260) against headless Chromium
under loss: both ends abandon messages and tell the other with I-FORWARD-TSN, never
FORWARD-TSN, and neither receiver stalls an ordered stream behind what was abandoned.

Chromium's dcSCTP runs I-DATA only with its field trial
``WebRTC-DataChannelMessageInterleaving``; with it, the page (tests/browser/datachannel,
loopback-only network namespace) offers and our SecurePeer (DTLS 1.2, so the wire can be
decrypted with its key log) answers. Each end opens three ordered channels: a reliable
one, one with ``maxRetransmits`` 0 and one with ``maxPacketLifeTime`` (a few ms); the
page echoes on our channels what arrives on them (with the channel's own reliability).
Once they are open, DTLS datagrams are dropped in-process at our side, seeded, never
more than two in a row: 15 % of what arrives for our transport (before it sees it) and
15 % of what it sends. Then both ends send, in rounds 30 ms apart without waiting for
acknowledgements, a message on the lifetime channel, one on the ``maxRetransmits`` 0
channel, one on the reliable one and a second on the ``maxRetransmits`` 0 channel
(seeded sizes 16-60,000 octets, up to 50 fragments): ours seeded random bytes, the
page's a byte pattern. Once the reliable messages are all in and neither end has
anything queued, the loss stops and each end sends a marker on each of its channels.
Asserted:

- the association negotiated interleaving;
- reliable messages arrive intact and in order, both ways: the page's own (bytes
  compared here), ours at the page (length and SHA-256 from the page) and the page's
  echoes of ours (bytes compared here);
- on a partially reliable channel, what arrives is intact, at most once and in send
  order (a subsequence of what was sent), in both directions and in the echoes; some
  messages were lost for good in each direction, and some arrived after a lost one;
- no stall: on every channel, both ways and through the echo, a marker sent after the
  loss stopped arrives, last (the ones not yet in go again every 0.25 s: Chromium
  sends the I-FORWARD-TSN that lets its markers through with another packet or on its
  backed-off T3 timer, see the comment in :func:`scenario`);
- on the wire (captured on ``lo``, decrypted with our key log, decoded by
  tests/browser/sctp_wire.py, independent of both stacks): both ends sent I-FORWARD-TSN
  chunks and I-DATA, neither sent a FORWARD-TSN or a DATA chunk after the handshake;
- our association's counters agree: it sent I-FORWARD-TSNs (``forward_tsn_out``, at
  least what the capture shows of ours: the ones we dropped never reached the wire) and
  applied Chromium's (``forward_tsn_in``, at most what the capture shows of
  Chromium's: it also holds the ones we dropped on arrival), refused none, counted no
  internal error, and, once Chromium's I-FORWARD-TSNs have passed all it abandoned,
  keeps nothing in its receive queue (no fragment, no partial message, nothing held
  for order, no TSN above the cumulative one; our markers on the reliable channel go on
  until then, within the same bound, as Chromium sends the I-FORWARD-TSN with its SACK).

Breaking our I-FORWARD-TSN handling makes it fail (checked by hand, not committed; one
run each): with ``ReceiveQueue.skip`` ignoring the stream entries, the page's
``maxRetransmits`` 0 channel stalls at us (0 of 24 arrive, none after a loss), its
markers on both partially reliable channels never arrive (45 sent on each), and our
queue keeps 21 partial messages and 150 complete ones held for order; with
``Association._handle_forward_tsn`` a no-op, the same stall, and the wait for both ends
to drain times out; with our side sending no I-FORWARD-TSN (``_produce`` skipping it),
Chromium's cumulative TSN cannot pass what we abandoned: 6 of our 12 reliable messages
reach the page and none of our markers.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.browser.netns import run_in_loopback_netns
from tests.browser.page_answerer import IDATA_FLAG, PAGE_DIR, PageAnswerer, describe, pattern
from tests.browser.sctp_wire import DtlsCapture, SctpTrace, decode_sctp
from tests.browser.session import browser_session
from tests.loss_injection import (
    InboundLoss,
    SeededLoss,
    drop_outbound,
    in_send_order,
    inbound_filter,
    receive_leftovers,
    until,
)
from webrtc_secure.dtls_transport import DtlsTransport

pytestmark = [pytest.mark.interop, pytest.mark.slow]

LIFETIME_MS = 5
#: our channels (the page echoes on them) and their options, as the page writes them
OURS: dict[str, dict[str, Any]] = {
    "ours-rel": {},
    "ours-rtx0": {"maxRetransmits": 0},
    "ours-life": {"maxPacketLifeTime": LIFETIME_MS},
}
#: the page's: "remote-reliable" is one of the two it opens before its offer
PAGES: dict[str, dict[str, Any]] = {
    "remote-reliable": {},
    "remote-rtx0": {"maxRetransmits": 0},
    "remote-life": {"maxPacketLifeTime": LIFETIME_MS},
}
RELIABLE = ("ours-rel", "remote-reliable")
#: each round's order, by kind of channel (two on the maxRetransmits 0 one, so that a
#: later message of its stream is often complete when the earlier one is abandoned)
ROUND = ("life", "rtx0", "rel", "rtx0")
SIZES = (16, 300, 1200, 5000, 20000, 60000)
ROUNDS = 12
ROUND_GAP = 0.03
IN_LOSS = 0.15
OUT_LOSS = 0.15
MAX_BURST = 2
SEED = 3
EXCHANGE_TIMEOUT = 20.0  # for the reliable messages and for both ends to drain
MARKER_TIMEOUT = 12.0
MARKER_GAP = 0.25  # seconds before a marker that has not arrived is sent again
MARKER = b"MARK"

#: the inbound loss the patched DtlsTransport.datagram_received applies
CURRENT: list[InboundLoss] = []


def _kind(label: str) -> str:
    return label.rsplit("-", 1)[1].replace("reliable", "rel")


@dataclass
class Outcome:
    """What the run saw, read in the test."""

    interleaving: bool = False
    we_are_client: bool = False
    options: dict[str, Any] = field(default_factory=dict)  # the page's view of the channels
    sent: dict[str, list[bytes]] = field(default_factory=dict)  # ours, per our channel
    page_sent: dict[str, list[bytes]] = field(default_factory=dict)  # the page's
    received: dict[str, list[bytes]] = field(default_factory=dict)  # what we received
    page_received: dict[str, Any] = field(default_factory=dict)  # the page's records
    page_errors: list[str] = field(default_factory=list)
    reliable_done: bool = False
    drained: bool = False
    markers: dict[str, bool] = field(default_factory=dict)
    marker_sends: dict[str, int] = field(default_factory=dict)  # markers sent per channel
    loss_stopped: float = 0.0  # time.monotonic() (the capture's clock)
    markers_in: float = 0.0  # seconds from then until every marker was in
    clean_in: float = 0.0  # ... and until our receive queue was empty (0: never)
    out_loss: tuple[int, int] = (0, 0)  # (dropped, seen) of what we sent
    in_loss: tuple[int, int] = (0, 0)  # (dropped, seen) of what arrived for us
    sctp: dict[str, Any] = field(default_factory=dict)
    leftover: dict[str, int] = field(default_factory=dict)
    traces: list[SctpTrace] = field(default_factory=list)
    seconds: float = 0.0


async def _page_until(session: Any, check: Callable[[dict[str, Any]], bool], timeout: float) -> Any:
    """Poll the page's dc.state() until ``check`` holds or ``timeout``; the last state."""
    deadline = time.monotonic() + timeout
    while True:
        state = await session.page.evaluate("dc.state()")
        if check(state) or time.monotonic() > deadline:
            return state
        await asyncio.sleep(0.05)


def _page_has(state: dict[str, Any], label: str, count: int) -> bool:
    got = state["received"].get(label)
    return got is not None and len(got) >= count


def _page_marked(state: dict[str, Any], label: str, marker: dict[str, Any]) -> bool:
    got = state["received"].get(label)
    return bool(got) and got[-1] == marker


def _page_drained(state: dict[str, Any]) -> bool:
    return all(c["bufferedAmount"] == 0 for c in state["channels"].values())


async def scenario(keylog: Path) -> Outcome:
    outcome = Outcome()
    started = time.monotonic()
    end = PageAnswerer(OURS)
    rng = random.Random(SEED)
    out_loss = SeededLoss(random.Random(SEED * 7919 + 1), OUT_LOSS, MAX_BURST)
    in_loss = SeededLoss(random.Random(SEED * 7919 + 2), IN_LOSS, MAX_BURST)
    try:
        with DtlsCapture() as capture:
            async with browser_session(
                end,
                mode="offer",
                sniff=False,
                page_dir=PAGE_DIR,
                page_name="datachannel.html",
                extra_flags=(IDATA_FLAG,),
                log_name="idata-pr-loss",
            ) as session:
                assert end.connect_task is not None
                await asyncio.wait_for(asyncio.shield(end.connect_task), 15)
                assert end.peer._sctp is not None and end.peer._dtls is not None
                association = end.peer._sctp.association
                dtls = end.peer._dtls
                for label, options in PAGES.items():
                    if label != "remote-reliable":
                        await session.page.evaluate(
                            f"dc.open({json.dumps(label)}, {json.dumps(options)})"
                        )
                await end.wait_open(list(OURS) + list(PAGES), 10)
                # (read once the channels are open: connect() may return before the
                # association has taken the peer's INIT parameters)
                outcome.interleaving = association.interleaving
                outcome.we_are_client = dtls.connection.is_client
                state = await _page_until(
                    session,
                    lambda s: all(
                        s["channels"].get(k, {}).get("readyState") == "open"
                        for k in list(OURS) + list(PAGES)
                    ),
                    10,
                )
                outcome.options = {
                    label: {
                        key: state["channels"][label][key]
                        for key in ("ordered", "maxRetransmits", "maxPacketLifeTime")
                    }
                    for label in list(OURS) + list(PAGES)
                }

                # loss at our side, both ways, from here on
                drop_outbound(dtls, out_loss)
                CURRENT.append(InboundLoss(in_loss, dtls))
                out_loss.on = in_loss.on = True

                ours_by_kind = {_kind(label): label for label in OURS}
                pages_by_kind = {_kind(label): label for label in PAGES}
                plan: list[list[tuple[str, int, int]]] = []  # the page's rounds
                outcome.page_sent = {label: [] for label in PAGES}
                outcome.sent = {label: [] for label in OURS}
                for _round in range(ROUNDS):
                    page_round = []
                    for kind in ROUND:
                        label = pages_by_kind[kind]
                        size, seed = rng.choice(SIZES), len(outcome.page_sent[label])
                        page_round.append((label, size, seed))
                        outcome.page_sent[label].append(pattern(size, seed))
                    plan.append(page_round)
                ours_rounds: list[list[tuple[str, bytes]]] = []
                for _round in range(ROUNDS):
                    our_round = []
                    for kind in ROUND:
                        label = ours_by_kind[kind]
                        head = f"{label}:{len(outcome.sent[label]):03d}:".encode()
                        data = head + rng.randbytes(max(rng.choice(SIZES) - len(head), 0))
                        outcome.sent[label].append(data)
                        our_round.append((label, data))
                    ours_rounds.append(our_round)
                # the page's rounds run on their own in the page, ours here, at once
                await session.page.evaluate(
                    f"(() => {{ const plan = {json.dumps(plan)};"
                    " window.prDone = (async () => {"
                    " for (const round of plan) {"
                    " for (const [label, size, seed] of round)"
                    " dc.channels[label].send(pattern(size, seed));"
                    f" await new Promise((r) => setTimeout(r, {int(ROUND_GAP * 1000)})); }}"
                    " return true; })(); return true; })()"
                )
                for our_round in ours_rounds:
                    for label, data in our_round:
                        end.channels[label].send(data)
                    await asyncio.sleep(ROUND_GAP)

                # the reliable messages all in, both ways (the echo included), then
                # nothing queued at either end and nothing outstanding at ours
                counts = {label: len(outcome.sent[label]) for label in OURS}
                n_reliable = len(outcome.page_sent["remote-reliable"])
                outcome.reliable_done = await until(
                    lambda: (
                        len(end.received["remote-reliable"]) >= n_reliable
                        and len(end.received["ours-rel"]) >= counts["ours-rel"]
                    ),
                    EXCHANGE_TIMEOUT,
                )
                rq = association._retransmit
                assert rq is not None
                ours_drained = await until(
                    lambda: (
                        rq.outstanding == 0
                        and not rq.forward_tsn_needed
                        and all(c.buffered_amount == 0 for c in end.channels.values())
                    ),
                    EXCHANGE_TIMEOUT,
                )
                state = await _page_until(
                    session,
                    lambda s: _page_drained(s) and _page_has(s, "ours-rel", counts["ours-rel"]),
                    EXCHANGE_TIMEOUT,
                )
                outcome.drained = ours_drained and _page_drained(state)
                out_loss.on = in_loss.on = False
                outcome.loss_stopped = time.monotonic()

                # no stall: a marker on every channel, both ways, arrives. Chromium sends
                # the I-FORWARD-TSN for messages it abandoned at the end of the lossy
                # phase with a packet it sends anyway (its SACK of our DATA) or when its
                # T3 timer fires, backing off (seen on the capture: one every 0.4 s, each
                # passing one gap), and until then its markers rightly wait in our queue
                # behind an earlier message of their stream. So every 0.25 s, the
                # markers not yet in are sent again (which gives Chromium packets to
                # answer, and covers a marker a sender abandoned itself); a stalled
                # stream delivers none of them
                marker = describe(MARKER)
                receive = association._receive
                assert receive is not None
                deadline = time.monotonic() + MARKER_TIMEOUT
                state = await session.page.evaluate("dc.state()")
                while True:
                    outcome.markers = {
                        label: end.ends_with(label, MARKER) for label in list(OURS) + list(PAGES)
                    } | {f"page:{label}": _page_marked(state, label, marker) for label in OURS}
                    clean = not any(receive_leftovers(receive).values())
                    if all(outcome.markers.values()) and not outcome.markers_in:
                        outcome.markers_in = time.monotonic() - outcome.loss_stopped
                    if outcome.markers_in and clean:
                        outcome.clean_in = time.monotonic() - outcome.loss_stopped
                        break
                    if time.monotonic() > deadline:
                        break
                    for label in OURS:
                        # (the reliable channel's markers also nudge Chromium until our
                        # cumulative TSN has passed everything it abandoned)
                        arrived = outcome.markers[label] and outcome.markers[f"page:{label}"]
                        if not arrived or (label == "ours-rel" and not clean):
                            end.channels[label].send(MARKER)
                            outcome.marker_sends[label] = outcome.marker_sends.get(label, 0) + 1
                    again = [label for label in PAGES if not outcome.markers[label]]
                    if again:
                        await session.page.evaluate(
                            f"(() => {{ for (const label of {json.dumps(again)})"
                            f" dc.channels[label].send({json.dumps(MARKER.decode())});"
                            " return true; })()"
                        )
                        for label in again:
                            outcome.marker_sends[label] = outcome.marker_sends.get(label, 0) + 1
                    await until(
                        lambda: all(end.ends_with(k, MARKER) for k in list(OURS) + list(PAGES)),
                        MARKER_GAP,
                    )
                    state = await _page_until(
                        session, lambda s: all(_page_marked(s, k, marker) for k in OURS), 0.2
                    )
                outcome.page_received = {
                    label: state["received"].get(label) or [] for label in OURS
                }
                outcome.page_errors = list(state["sendErrors"])
                outcome.received = {
                    label: list(end.received[label]) for label in list(OURS) + list(PAGES)
                }
                outcome.leftover = receive_leftovers(receive)
                outcome.sctp = dict(end.peer.stats().get("sctp") or {})
        outcome.traces = decode_sctp(capture.datagrams, keylog)
    finally:
        CURRENT.clear()
        outcome.out_loss = (out_loss.dropped, out_loss.seen)
        outcome.in_loss = (in_loss.dropped, in_loss.seen)
        await end.close()
        outcome.seconds = time.monotonic() - started
    return outcome


def _strip_marker(got: list[Any], marker: Any) -> list[Any]:
    """``got`` without its trailing markers (one in the middle stays, and then fails
    the comparison with what was sent)."""
    end = len(got)
    while end and got[end - 1] == marker:
        end -= 1
    return list(got[:end])


def _after_lost(got: list[Any], sent: list[Any]) -> int:
    """Messages that arrived after one of their stream that never did."""
    lost = [i for i, m in enumerate(sent) if m not in got]
    if not lost:
        return 0
    return sum(1 for m in got if sent.index(m) > lost[0])


def _wire(outcome: Outcome) -> dict[str, Any]:
    assert len(outcome.traces) == 1, f"{len(outcome.traces)} decrypted DTLS sessions"
    trace = outcome.traces[0]
    ours = "client" if outcome.we_are_client else "server"
    theirs = "server" if ours == "client" else "client"
    out: dict[str, Any] = {"undecryptable": trace.undecryptable}
    for who, side in (("ours", ours), ("chromium", theirs)):
        counts = trace.counts(side)
        out[who] = {
            name: counts.get(name, 0) for name in ("DATA", "I_DATA", "FORWARD_TSN", "I_FORWARD_TSN")
        } | {"retransmitted": trace.retransmitted(side)}
    return out


def _deliveries(outcome: Outcome) -> dict[str, Any]:
    """Per channel and direction: (arrived, sent, arrived after a lost one)."""
    out: dict[str, Any] = {}
    for label in PAGES:
        got = _strip_marker(outcome.received.get(label, []), MARKER)
        sent = outcome.page_sent.get(label, [])
        out[f"page->us {label}"] = (len(got), len(sent), _after_lost(got, sent))
    for label in OURS:
        sent = [describe(m) for m in outcome.sent.get(label, [])]
        got = _strip_marker(outcome.page_received.get(label) or [], describe(MARKER))
        out[f"us->page {label}"] = (len(got), len(sent), _after_lost(got, sent))
        echo = _strip_marker(outcome.received.get(label, []), MARKER)
        out[f"echo {label}"] = len(echo)
    return out


def _report(outcome: Outcome) -> str:
    return (
        f"{outcome.seconds:.1f} s, interleaving {outcome.interleaving}, dropped "
        f"{outcome.out_loss[0]}/{outcome.out_loss[1]} of ours, {outcome.in_loss[0]}/"
        f"{outcome.in_loss[1]} of Chromium's, reliable done {outcome.reliable_done}, "
        f"drained {outcome.drained}, delivered (arrived, sent, after a lost one) "
        f"{_deliveries(outcome)}, markers {outcome.markers} (sent "
        f"{outcome.marker_sends}, all in after {outcome.markers_in:.1f} s, queue empty after "
        f"{outcome.clean_in:.1f} s), wire "
        f"{_wire(outcome) if outcome.traces else None}, our I-FORWARD-TSNs out "
        f"{outcome.sctp.get('forward_tsn_out')} in {outcome.sctp.get('forward_tsn_in')}, "
        f"abandoned {outcome.sctp.get('abandoned_messages')}, retransmitted "
        f"{outcome.sctp.get('retransmissions')}, our dropped {outcome.sctp.get('dropped')}, "
        f"leftover {outcome.leftover}, page errors {outcome.page_errors}, channels "
        f"{outcome.options}"
    )


@pytest.mark.timeout(120)
def test_idata_pr_channels_with_chromium_under_loss(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    keylog = tmp_path / "ours.keylog"
    monkeypatch.setenv("SSLKEYLOGFILE", str(keylog))
    monkeypatch.setattr(
        DtlsTransport,
        "datagram_received",
        inbound_filter(DtlsTransport.datagram_received, CURRENT),
    )
    outcome = run_in_loopback_netns(lambda: scenario(keylog), timeout=90)
    report = _report(outcome)
    print("\n" + report)
    assert outcome.interleaving, report
    assert outcome.out_loss[0] > 0 and outcome.in_loss[0] > 0, report
    # both ends see the channels' reliability as opened
    for label, options in (OURS | PAGES).items():
        seen = outcome.options[label]
        assert seen["ordered"] is True, (label, report)
        assert seen["maxRetransmits"] == options.get("maxRetransmits"), (label, report)
        assert seen["maxPacketLifeTime"] == options.get("maxPacketLifeTime"), (label, report)
    assert outcome.reliable_done and outcome.drained, report
    assert not outcome.page_errors, report

    # reliable: every message intact and in order, both ways and echoed
    marker = describe(MARKER)
    assert (
        _strip_marker(outcome.received["remote-reliable"], MARKER)
        == (outcome.page_sent["remote-reliable"])
    ), report
    assert _strip_marker(outcome.page_received["ours-rel"], marker) == [
        describe(m) for m in outcome.sent["ours-rel"]
    ], report
    assert _strip_marker(outcome.received["ours-rel"], MARKER) == outcome.sent["ours-rel"], report

    # partially reliable: intact, at most once, in order; some lost, some after a loss
    lost = {"page->us": 0, "us->page": 0}
    after = {"page->us": 0, "us->page": 0}
    for label in PAGES:
        if label in RELIABLE:
            continue
        got = _strip_marker(outcome.received[label], MARKER)
        sent = outcome.page_sent[label]
        assert in_send_order(got, sent), (label, report)
        lost["page->us"] += len(sent) - len(got)
        after["page->us"] += _after_lost(got, sent)
    for label in OURS:
        if label in RELIABLE:
            continue
        sent = [describe(m) for m in outcome.sent[label]]
        got = _strip_marker(outcome.page_received[label], marker)
        assert in_send_order(got, sent), (label, report)
        lost["us->page"] += len(sent) - len(got)
        after["us->page"] += _after_lost(got, sent)
        # the echo: what the page received, and sent back, partially reliably
        echo = _strip_marker(outcome.received[label], MARKER)
        assert in_send_order(echo, outcome.sent[label]), (label, report)
        assert in_send_order([describe(m) for m in echo], got), (label, report)
    assert all(lost.values()) and all(after.values()), (lost, after, report)

    # no stall: every marker arrived, on every channel, both ways
    assert outcome.markers and all(outcome.markers.values()), report

    # on the wire: I-DATA and I-FORWARD-TSN only, both ways
    wire = _wire(outcome)
    assert wire["undecryptable"] == 0, report
    for who in ("ours", "chromium"):
        assert wire[who]["DATA"] == 0 and wire[who]["I_DATA"] > 0, (who, report)
        assert wire[who]["FORWARD_TSN"] == 0, (who, report)
        assert wire[who]["I_FORWARD_TSN"] > 0, (who, report)
    # our counters agree with the wire (what we dropped is missing from it one way,
    # and present in it the other)
    sctp = outcome.sctp
    assert sctp["forward_tsn_out"] >= wire["ours"]["I_FORWARD_TSN"] > 0, report
    assert 0 < sctp["forward_tsn_in"] <= wire["chromium"]["I_FORWARD_TSN"], report
    assert sctp["abandoned_messages"] > 0, report
    dropped = sctp.get("dropped", {})
    assert not any(reason.startswith("forward_tsn") for reason in dropped), report
    assert not dropped.get("internal_error"), report
    assert not any(outcome.leftover.values()), report
