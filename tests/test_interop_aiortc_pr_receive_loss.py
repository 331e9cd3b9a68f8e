"""Partially reliable data channels FROM aiortc under loss: our receiver follows
aiortc's FORWARD-TSNs (RFC 3758), never stalls an ordered stream behind an abandoned
message, delivers every reliable message exactly once, and keeps nothing behind.

The reverse of tests/test_interop_aiortc_pr_loss.py. aiortc (an independent SCTP:
DATA and FORWARD-TSN, no I-DATA) offers three ordered channels to our SecurePeer in one
association (one process, a loopback-only network namespace): a reliable one, one with
``maxRetransmits=0`` and one with ``maxPacketLifeTime`` (3 ms). Once they are open, a
seeded 15 % of the DTLS datagrams arriving at OUR side is dropped in-process, never
more than two in a row (this kernel has no netem), before our DTLS transport sees
them: aiortc's DATA and FORWARD-TSN chunks are lost on the way to us, our SACKs all
reach aiortc. aiortc then retransmits on the reliable channel and abandons messages on
the other two (a lost chunk reported missing three times or caught by T3), and its
FORWARD-TSNs tell us to skip them, sometimes after we hold some of their fragments
and later messages of their stream.

Ten rounds, 30 ms apart and without waiting for acknowledgements, each send a
message on the lifetime channel (5,000-60,000 octets, up to 50 fragments), one on the
``maxRetransmits=0`` channel, one on the reliable channel and a second one on the
``maxRetransmits=0`` channel (seeded sizes 16-60,000), so losses land in the middle of
the stream (gap reports, fast retransmission, a FORWARD-TSN arriving after a later
message of its stream is complete) as well as at its tail (T3, 1 s at aiortc's
minimum RTO). Then we wait until aiortc has nothing queued or outstanding (every chunk
acknowledged, or abandoned and passed by a FORWARD-TSN we acknowledged), stop the
loss and send a marker on each channel. Asserted, per seeded run:

- the reliable channel's messages arrive exactly once, intact, in order;
- a partially reliable channel's arrive at most once, intact, in send order, and
  every message aiortc did not abandon arrives (an abandoned one may arrive too: aiortc
  also abandons messages that reached us whole, on T3);
- no stall: every marker arrives (bounded wait), and at the end each of our inbound
  streams expects the SSN aiortc would use next;
- our association applied at most the FORWARD-TSNs aiortc sent (its
  ``forward_tsn_in`` counter, which must equal the calls of its FORWARD-TSN handler)
  and counted none as unexpected, of the wrong kind or out of its window, nor any
  internal error;
- at the end our receive queue holds nothing: no fragment, no message waiting for
  order or for the application, no TSN above the cumulative one, no bytes buffered.

The association counts the FORWARD-TSNs it applied (``stats.forward_tsn_in``, in
``SecurePeer.stats()["sctp"]``); what they did inside the receive queue is counted by
test-only wrappers on our side: around ``Association._handle_forward_tsn`` (its calls,
their stream entries and the messages held for order they released) and
``ReceiveQueue._discard_through`` (fragments they discarded);
on aiortc's side, around ``_send``, ``_maybe_abandon`` and ``_send_chunk``: which
message has which SSN, which it abandoned, the FORWARD-TSNs it sent. Seeds run until,
after at least three, the runs together showed: messages abandoned on both partially
reliable channels, messages arriving after abandoned ones, FORWARD-TSNs acted on in
every run, a FORWARD-TSN discarding fragments we held (a message abandoned part-way)
and one releasing a message held for order behind a skipped one.

Breaking our FORWARD-TSN handling makes it fail (checked by hand, not committed): with
the stream entries ignored (``ReceiveQueue.skip`` given no streams) the PR streams
stall (nothing after the first loss arrives, their markers neither); with
``ReceiveQueue._discard_through`` a no-op the fragments of messages abandoned part-way
stay in our reassembly queue (246 fragments in the first seed); with
``Association._handle_forward_tsn`` a no-op aiortc never settles.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import random
import time
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.rtcsctptransport import DataChunk as AiortcDataChunk
from aiortc.rtcsctptransport import ForwardTsnChunk as AiortcForwardTsnChunk

from tests.browser.aiortc_peer import rtc_configuration
from tests.browser.netns import run_in_loopback_netns
from tests.loss_injection import (
    ChannelRecorder,
    InboundLoss,
    SeededLoss,
    in_send_order,
    inbound_filter,
    payload,
    receive_leftovers,
    until,
    wait_event,
)
from webrtc_secure import SecurePeer, SessionDescription
from webrtc_secure.dtls_transport import DtlsTransport
from webrtc_secure.sctp.receive_queue import ReceiveQueue

pytestmark = [pytest.mark.interop, pytest.mark.slow]

LABELS = ("reliable", "pr-rtx0", "pr-life")
PARTIAL = ("pr-rtx0", "pr-life")
#: each round's order: the lifetime channel's (fragmented) message first; two on the
#: max_retransmits=0 channel, so that a later message of a stream is often complete
#: (held for order) when the FORWARD-TSN that skips an earlier one arrives
SEND_ORDER = ("pr-life", "pr-rtx0", "reliable", "pr-rtx0")
SIZES = (16, 300, 1200, 5000, 20000, 60000)
LIFE_SIZES = (5000, 20000, 40000, 60000)
ROUNDS = 10
ROUND_GAP = 0.03  # seconds between rounds (no waiting for acknowledgements)
LOSS = 0.15  # share of the DTLS datagrams arriving at our side dropped
MAX_BURST = 2  # at most this many of them dropped in a row
LIFETIME_MS = 3  # pr-life's maxPacketLifeTime
SEEDS = (12, 13, 11, 14)
MIN_RUNS = 3
MARKER = b"MARK"
SETTLE_TIMEOUT = 12.0  # seconds for aiortc to have nothing queued or outstanding
MARKER_TIMEOUT = 5.0  # seconds for the markers, sent without loss, to arrive


#: the inbound loss the patched DtlsTransport.datagram_received applies (one at a time)
CURRENT: list[InboundLoss] = []


@dataclass
class Run:
    """One seeded run's facts, read in the test."""

    seed: int
    sent: dict[str, list[bytes]] = field(default_factory=dict)
    got: dict[str, list[bytes]] = field(default_factory=dict)
    marker_arrived: dict[str, bool] = field(default_factory=dict)
    #: aiortc's messages: (stream id, SSN) -> payload, and the abandoned ones' keys
    by_ssn: dict[tuple[int, int], bytes] = field(default_factory=dict)
    abandoned: set[tuple[int, int]] = field(default_factory=set)
    stream_ids: dict[str, int] = field(default_factory=dict)
    aiortc_forward_tsns: int = 0  # FORWARD-TSNs aiortc sent
    aiortc_data: int = 0  # DATA chunks aiortc sent (first sends and retransmissions)
    aiortc_settled: bool = False
    forward_tsns: int = 0  # FORWARD-TSNs our association applied (stats.forward_tsn_in)
    forward_calls: int = 0  # calls of its FORWARD-TSN handler (the wrapper's count)
    forward_entries: int = 0  # their stream entries
    #: fragments (held by us, of messages abandoned part-way) a FORWARD-TSN discarded
    fragments_discarded: int = 0
    #: complete messages held for order that a FORWARD-TSN released
    released: int = 0
    #: per stream at the end: (the SSN we expect next, the one aiortc would use next)
    next_ssn: dict[str, tuple[int, int]] = field(default_factory=dict)
    leftover: dict[str, Any] = field(default_factory=dict)  # our receive queue at the end
    sctp: dict[str, Any] = field(default_factory=dict)
    link_seen: int = 0
    link_dropped: int = 0
    seconds: float = 0.0

    def abandoned_payloads(self, label: str) -> list[bytes]:
        """The messages of the lossy phase aiortc abandoned on ``label``, in send order
        (a marker it abandoned is not one: it shows as a marker that did not arrive)."""
        sid, sent = self.stream_ids[label], self.sent.get(label, [])
        return [
            self.by_ssn[key]
            for key in sorted(self.abandoned)
            if key[0] == sid and self.by_ssn[key] in sent
        ]


def _aiortc_settled(sctp: Any) -> bool:
    """aiortc has nothing queued or outstanding, no FORWARD-TSN point ahead of what we
    acknowledged."""
    return (
        not sctp._data_channel_queue
        and not sctp._outbound_queue
        and not sctp._sent_queue
        and sctp._advanced_peer_ack_tsn == sctp._last_sacked_tsn
    )


def _waiting(receive: ReceiveQueue) -> int:
    return sum(len(s.waiting or ()) for s in receive._streams.values())


def _clean(leftover: dict[str, Any]) -> bool:
    return not any(leftover.values())


async def scenario(seed: int) -> Run:
    run = Run(seed)
    started = time.monotonic()
    rng = random.Random(seed)
    ours = SecurePeer(host_addresses=["127.0.0.1"], dtls_versions=("1.2",))
    pc = RTCPeerConnection(configuration=rtc_configuration())
    recorder = ChannelRecorder(LABELS, MARKER)
    got, markers, ours_seen = recorder.got, recorder.markers, recorder.all_seen
    run.got = got
    ours.on("datachannel", recorder)
    loss = SeededLoss(random.Random(seed * 7919 + 1), LOSS, MAX_BURST)
    connect: asyncio.Task[None] | None = None
    try:
        theirs = {
            "reliable": pc.createDataChannel("reliable"),
            "pr-rtx0": pc.createDataChannel("pr-rtx0", maxRetransmits=0),
            "pr-life": pc.createDataChannel("pr-life", maxPacketLifeTime=LIFETIME_MS),
        }
        opened = {label: asyncio.Event() for label in LABELS}
        for label, channel in theirs.items():
            channel.on("open", opened[label].set)
        await pc.setLocalDescription(await pc.createOffer())
        offer = SessionDescription.from_sdp(pc.localDescription.sdp, "offer")
        answer = await ours.create_answer(offer)
        await pc.setRemoteDescription(RTCSessionDescription(answer.to_sdp(), "answer"))
        connect = asyncio.ensure_future(ours.connect(offer))
        await asyncio.wait_for(asyncio.shield(connect), 15)
        for label in LABELS:
            await wait_event(opened[label], 10, f"aiortc's {label} channel to open")
        await wait_event(ours_seen, 10, "our peer to see aiortc's channels")
        for label, channel in theirs.items():
            assert channel.id is not None
            run.stream_ids[label] = channel.id

        # aiortc's side: which message has which SSN, which it abandoned, what it sent
        sctp: Any = pc.sctp
        original_send, original_abandon, original_chunk = (
            sctp._send,
            sctp._maybe_abandon,
            sctp._send_chunk,
        )

        async def send(stream_id: int, pp_id: int, user_data: bytes, **kw: Any) -> None:
            if kw.get("ordered", True):
                ssn = sctp._outbound_stream_seq.get(stream_id, 0)
                run.by_ssn[(stream_id, ssn)] = user_data
            await original_send(stream_id, pp_id, user_data, **kw)

        def maybe_abandon(chunk: Any) -> bool:
            was = chunk._abandoned
            abandoned: bool = original_abandon(chunk)
            if abandoned and not was:
                run.abandoned.add((chunk.stream_id, chunk.stream_seq))
            return abandoned

        async def send_chunk(chunk: Any) -> None:
            if isinstance(chunk, AiortcForwardTsnChunk):
                run.aiortc_forward_tsns += 1
            elif isinstance(chunk, AiortcDataChunk):
                run.aiortc_data += 1
            await original_chunk(chunk)

        sctp._send, sctp._maybe_abandon, sctp._send_chunk = send, maybe_abandon, send_chunk

        # our side: the FORWARD-TSNs our association acts on and what they free
        assert ours._sctp is not None
        association = ours._sctp.association
        receive = association._receive
        assert receive is not None
        original_forward = association._handle_forward_tsn
        original_discard = receive._discard_through

        def handle_forward_tsn(chunk: Any) -> None:
            run.forward_calls += 1
            run.forward_entries += len(chunk.streams)
            waiting = _waiting(receive)
            original_forward(chunk)
            run.released += waiting - _waiting(receive)

        def discard_through(target: int) -> None:
            before = len(receive._fragments)
            original_discard(target)
            run.fragments_discarded += before - len(receive._fragments)

        association._handle_forward_tsn = handle_forward_tsn  # type: ignore[method-assign]
        receive._discard_through = discard_through  # type: ignore[method-assign]

        # loss on the datagrams arriving at our DTLS transport from here on
        CURRENT.append(InboundLoss(loss, ours._dtls))
        loss.on = True

        sent: dict[str, list[bytes]] = {label: [] for label in LABELS}
        run.sent = sent
        for _round in range(ROUNDS):
            for label in SEND_ORDER:
                sizes = LIFE_SIZES if label == "pr-life" else SIZES
                data = payload(label, len(sent[label]), rng.choice(sizes), rng)
                theirs[label].send(data)
                sent[label].append(data)
            await asyncio.sleep(ROUND_GAP)
        run.aiortc_settled = await until(lambda: _aiortc_settled(sctp), SETTLE_TIMEOUT)
        loss.on = False
        for label in LABELS:
            theirs[label].send(MARKER)
        await until(lambda: all(m.is_set() for m in markers.values()), MARKER_TIMEOUT)
        run.marker_arrived = {label: markers[label].is_set() for label in LABELS}
        # the markers are in: whatever our queue still holds, it holds for good
        await until(lambda: _clean(receive_leftovers(receive)), 2)
        run.leftover = receive_leftovers(receive)
        for label, sid in run.stream_ids.items():
            stream = receive._streams.get(sid)
            run.next_ssn[label] = (
                0 if stream is None else stream.next_seq,
                sctp._outbound_stream_seq.get(sid, 0),
            )
        run.sctp = dict(ours.stats().get("sctp") or {})
        run.forward_tsns = run.sctp["forward_tsn_in"]
    finally:
        CURRENT.clear()
        run.link_seen, run.link_dropped = loss.seen, loss.dropped
        if connect is not None and not connect.done():
            connect.cancel()
            with contextlib.suppress(BaseException):
                await connect
        with contextlib.suppress(Exception):
            await asyncio.wait_for(ours.close(), 5)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(pc.close(), 5)
        run.seconds = time.monotonic() - started
    return run


def check_run(run: Run) -> None:
    where = f"seed {run.seed}"
    assert run.link_dropped > 0, where
    assert run.aiortc_settled, (where, "aiortc still had data queued or outstanding")
    # reliable: every message once, intact, in order
    assert run.got["reliable"] == run.sent["reliable"], where
    for label in PARTIAL:
        got, sent = run.got[label], run.sent[label]
        # partially reliable, ordered: at most once, intact, in send order
        assert in_send_order(got, sent), (where, label)
        # what aiortc did not abandon arrived (an abandoned one may have, too: all of
        # it reached us before aiortc gave up on it)
        abandoned = run.abandoned_payloads(label)
        missing = [m[:12] for m in sent if m not in got and m not in abandoned]
        assert not missing, (where, label, missing)
    # no stall: every marker arrived, and each stream expects the SSN aiortc would
    # use next (what arrived after abandoned messages: _evidence)
    assert all(run.marker_arrived.get(label) for label in LABELS), (where, run.marker_arrived)
    assert all(ours == theirs for ours, theirs in run.next_ssn.values()), (where, run.next_ssn)
    # FORWARD-TSNs: ours applied at most what aiortc sent, and refused none (so every
    # call of the handler is one applied: the counter and the wrapper agree)
    assert run.forward_tsns <= run.aiortc_forward_tsns, where
    dropped = run.sctp.get("dropped", {})
    assert not any(reason.startswith("forward_tsn") for reason in dropped), (where, dropped)
    assert run.forward_tsns == run.forward_calls, (where, run.forward_tsns, run.forward_calls)
    # and ours sent none: aiortc sent us nothing partially reliable
    assert run.sctp["forward_tsn_out"] == 0, where
    assert not dropped.get("internal_error"), (where, dropped)
    # nothing left behind in our receive queue
    assert _clean(run.leftover), (where, run.leftover)


def _evidence(runs: list[Run]) -> dict[str, bool]:
    """What the runs together must have shown for the checks above to mean something."""
    return {
        f"aiortc abandoned on {label}": any(r.abandoned_payloads(label) for r in runs)
        for label in PARTIAL
    } | {
        "messages arrived after abandoned ones": any(_after_abandoned(r) for r in runs),
        "we applied FORWARD-TSNs": all(r.forward_tsns > 0 for r in runs),
        "a FORWARD-TSN discarded fragments we held": any(r.fragments_discarded for r in runs),
        "a FORWARD-TSN released a message held for order": any(r.released for r in runs),
    }


def _after_abandoned(run: Run) -> int:
    """Messages of the lossy phase that arrived after an abandoned one of their stream."""
    count = 0
    for label in PARTIAL:
        sent, abandoned = run.sent[label], run.abandoned_payloads(label)
        if abandoned:
            first = min(sent.index(m) for m in abandoned)
            count += sum(1 for m in run.got[label] if sent.index(m) > first)
    return count


def _report(run: Run) -> str:
    arrived = {label: f"{len(run.got[label])}/{len(run.sent[label])}" for label in LABELS}
    abandoned = {label: len(run.abandoned_payloads(label)) for label in PARTIAL}
    return (
        f"seed {run.seed}: {run.seconds:.1f} s, dropped {run.link_dropped}/{run.link_seen} "
        f"datagrams to us, aiortc sent {run.aiortc_data} DATA chunks, abandoned "
        f"{abandoned}, arrived {arrived} ({_after_abandoned(run)} after an abandoned "
        f"one), markers {run.marker_arrived}, FORWARD-TSN "
        f"aiortc sent {run.aiortc_forward_tsns}, we applied {run.forward_tsns} "
        f"({run.forward_entries} stream entries), fragments they discarded "
        f"{run.fragments_discarded}, messages they released {run.released}, next SSNs "
        f"{run.next_ssn}, our dropped {run.sctp.get('dropped')}, leftover "
        f"{run.leftover}"
    )


@pytest.mark.timeout(120)
def test_pr_channels_from_aiortc_under_loss(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        DtlsTransport,
        "datagram_received",
        inbound_filter(DtlsTransport.datagram_received, CURRENT),
    )
    runs: list[Run] = []
    for seed in SEEDS:
        run = run_in_loopback_netns(functools.partial(scenario, seed), timeout=40)
        print("\n" + _report(run))
        runs.append(run)
        check_run(run)
        if len(runs) >= MIN_RUNS and all(_evidence(runs).values()):
            break
    evidence = _evidence(runs)
    assert all(evidence.values()), (evidence, [_report(r) for r in runs])
