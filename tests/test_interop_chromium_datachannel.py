"""Data channels against headless Chromium (dcSCTP, BoringSSL DTLS, its own ICE), in a
loopback-only network namespace, in both offer/answer directions.

The page (``tests/browser/datachannel``) and the Python end run the same script
(:mod:`tests.browser.dc_agent`): each opens a reliable ordered channel (protocol
"interop") and an unordered channel with ``maxRetransmits: 0``; each sends text,
non-ASCII text, binary, empty text, empty binary, 64 KiB text and 256 KiB binary on
its reliable channel and forty small messages on its unordered one; each echoes what
arrives on the other's channels. Asserted on both ends: every message arrives intact
(type, length, SHA-256), in order on the ordered channels; each end sees the other's
channel with the properties it was opened with (DCEP); a channel closed by either end
is seen by the other as ``close`` (stream reset); the page's ``getStats()``
data-channel counters equal what the Python end counted.

A capture of ``lo`` is decrypted with the Python end's key log
(:mod:`tests.browser.sctp_wire`): the SCTP chunks on the wire are listed per side. With
Chromium's SNAP field trial on (``a=sctp-init`` in both descriptions) the association
must come up with no INIT, INIT-ACK, COOKIE-ECHO or COOKIE-ACK on the wire.

The same script runs with aiortc as the Python end (the harness check: if it fails
there, the harness is wrong, not our peer).
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.browser.aiortc_datachannel import AiortcChannelPeer, aiortc_keylog
from tests.browser.dc_agent import (
    RELIABLE,
    UNORDERED,
    described,
    message_bytes,
    strip_names,
    suite,
    unordered_suite,
)
from tests.browser.netns import run_in_loopback_netns
from tests.browser.sctp_wire import DtlsCapture, decode_sctp
from tests.browser.session import ARTIFACTS, browser_session

pytestmark = pytest.mark.interop

PAGE_DIR = Path(__file__).resolve().parent / "browser" / "datachannel"
SNAP_FLAG = "--force-fieldtrials=WebRTC-Sctp-Snap/Enabled/"
PAGE_PREFIX = "remote"


async def _page_state(session: Any) -> dict[str, Any]:
    value = await session.page.evaluate("dc.state()")
    assert isinstance(value, dict)
    return value


async def _wait_page(session: Any, predicate: Any, what: str, timeout: float = 15.0
                     ) -> dict[str, Any]:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        state = await _page_state(session)
        if predicate(state):
            return state
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"page: no {what} in {timeout}s: {json.dumps(state)[:3000]}"
                                 f"\npage log: {await session.page.evaluate('harness.log')}")
        await asyncio.sleep(0.1)


async def _wait_page_settled(session: Any, labels: list[str], count: int,
                             quiet: float = 1.0, timeout: float = 20.0) -> dict[str, Any]:
    """The page's side of ``ChannelAgent.wait_settled`` for several labels at once."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    last: list[int] = []
    last_change = loop.time()
    while True:
        state = await _page_state(session)
        got = [_page_received(state, label) for label in labels]
        if got != last:
            last, last_change = got, loop.time()
        if all(g >= count for g in got) or (min(got) >= 0 and loop.time() - last_change
                                              >= quiet):
            return state
        if loop.time() > deadline:
            raise AssertionError(f"page still receiving on {labels} after {timeout}s: {got}")
        await asyncio.sleep(0.1)


def _page_has(state: dict[str, Any], label: str, event: str) -> bool:
    return [label, event] in state["events"]


def _page_received(state: dict[str, Any], label: str) -> int:
    received = state["received"].get(label)
    return -1 if received is None else len(received)


async def chromium_script(end: Any, mode: str, keylog: Path, *, snap: bool = False
                          ) -> dict[str, Any]:
    """Run the script between the page and ``end`` (an aiortc or webrtc_secure end)."""
    agent = end.agent
    mine = [agent.reliable, agent.unordered]
    page_own = [f"{PAGE_PREFIX}-{RELIABLE}", f"{PAGE_PREFIX}-{UNORDERED}"]
    report: dict[str, Any] = {"mode": mode, "snap": snap}
    with DtlsCapture() as capture:
        async with browser_session(
            end, mode=mode, sniff=False, page_dir=PAGE_DIR, page_name="datachannel.html",
            extra_flags=(SNAP_FLAG,) if snap else (),
            log_name=f"datachannel-{type(end).__name__}-{mode}{'-snap' if snap else ''}",
        ) as session:
            report["browser_sdp"] = session.browser_sdp
            report["python_sdp"] = str(session.start_reply.get("remoteSdp", ""))
            await end.wait_connected(15)
            # both ends: own channels open, the other's announced and open
            await agent.wait_open(mine + page_own)
            await _wait_page(session, lambda s: all(
                _page_has(s, x, "open") for x in page_own + mine), "channels open")

            # both ways at once: the suite on the reliable channels, each echoed by
            # the other end; then (once that is through, so that no burst of the large
            # messages fills a socket buffer under them) forty small messages both
            # ways on the unordered, maxRetransmits 0 channels, echoed as well
            page_own_reliable, page_own_unordered = page_own
            n, u = len(suite()), len(unordered_suite())
            agent.send(agent.reliable)
            await session.page.evaluate(f"dc.send('{page_own_reliable}')")
            for label in (agent.reliable, page_own_reliable):
                await agent.wait_received(label, n, timeout=20)
            await _wait_page(session, lambda s: all(
                _page_received(s, x) >= n for x in (page_own_reliable, agent.reliable)),
                "reliable echoes", timeout=20)
            # maxRetransmits 0 may lose messages: wait until all arrived or none for 1 s
            agent.send(agent.unordered, UNORDERED)
            await session.page.evaluate(f"dc.send('{page_own_unordered}', 'unordered')")
            for label in (agent.unordered, page_own_unordered):
                await agent.wait_settled(label, u)
            page = await _wait_page_settled(session, [page_own_unordered, agent.unordered], u)
            report["page_exchange"] = page
            report["page_stats"] = await session.page.evaluate("dc.stats()")
            report["agent_counters"] = {k: dict(vars(v)) for k, v in agent.counters.items()}
            report["agent_received"] = {k: list(v) for k, v in agent.received.items()}
            report["agent_open_info"] = dict(agent.open_info)
            report["ours_channel_stats"] = _channel_stats(end)

            # closing: the page closes its reliable channel, we close ours
            await session.page.evaluate(f"dc.close('{page_own_reliable}')")
            agent.close(agent.reliable)
            await agent.wait_closed(page_own_reliable)
            await agent.wait_closed(agent.reliable)
            closed = await _wait_page(session, lambda s: _page_has(
                s, agent.reliable, "close") and _page_has(s, page_own_reliable, "close"),
                "close of both reliable channels")
            # the unordered channels still carry messages after the reliable ones closed
            before = len(agent.received[agent.unordered])
            for _ in range(5):
                agent.channels[agent.unordered].send("after close")
            report["after_close"] = await agent.wait_settled(
                agent.unordered, before + 5) - before
            report["page_closed"] = closed
            # getStats() may lag the close events a little: poll for a few seconds
            for _ in range(30):
                report["page_stats_closed"] = await session.page.evaluate("dc.stats()")
                if report["page_stats_closed"]["peerConnection"]["dataChannelsClosed"] >= 2:
                    break
                await asyncio.sleep(0.1)
            report["agent_events"] = list(agent.events)
            report["agent_errors"] = list(agent.errors)
            report["python_sctp"] = end.sctp_info()
            await session.screenshot(ARTIFACTS / f"datachannel-{type(end).__name__}-{mode}.png")
    traces = decode_sctp(capture.datagrams, keylog)
    report["wire"] = [t.summary() for t in traces]
    report["wire_data"] = [
        {side: dict(t.data_messages(side)) for side in ("client", "server")} for t in traces]
    report["datagrams"] = len(capture.datagrams)
    return report


def _channel_stats(end: Any) -> dict[str, Any]:
    """Per-channel counters the Python end's channel objects keep, if they keep any."""
    out: dict[str, Any] = {}
    for label, channel in end.agent.channels.items():
        stats = getattr(channel, "stats", None)
        if callable(stats):
            stats = stats()
        if stats is not None:
            out[label] = stats if isinstance(stats, dict) else vars(stats)
    return out


def check_report(report: dict[str, Any], prefix: str) -> None:
    """Everything the module docstring promises, from one report."""
    sent = strip_names(described(suite()))
    sent_unordered = strip_names(described(unordered_suite()))
    mine = {RELIABLE: f"{prefix}-{RELIABLE}", UNORDERED: f"{prefix}-{UNORDERED}"}
    theirs = {RELIABLE: f"{PAGE_PREFIX}-{RELIABLE}", UNORDERED: f"{PAGE_PREFIX}-{UNORDERED}"}
    page, received = report["page_exchange"], report["agent_received"]

    def unordered(descriptions: list[dict[str, Any]]) -> Counter[str]:
        return Counter(json.dumps(d, sort_keys=True) for d in descriptions)

    # every message intact, ordered ones in order: ours -> page -> echoed back to us,
    # and page -> ours -> echoed back to the page
    assert page["received"][mine[RELIABLE]] == sent
    assert received[mine[RELIABLE]] == sent
    assert received[theirs[RELIABLE]] == sent
    assert page["received"][theirs[RELIABLE]] == sent
    # unordered, maxRetransmits 0: what arrives is intact and never duplicated, each
    # echo is of a message that arrived, and messages do arrive (loss is allowed)
    there_mine, back_mine = page["received"][mine[UNORDERED]], received[mine[UNORDERED]]
    there_theirs = received[theirs[UNORDERED]]
    back_theirs = page["received"][theirs[UNORDERED]]
    for there, back in ((there_mine, back_mine), (there_theirs, back_theirs)):
        assert there and back
        assert not unordered(there) - unordered(sent_unordered), there
        assert not unordered(back) - unordered(there), back
    assert not page["sendErrors"] and not report["agent_errors"]

    # DCEP carried the properties both ways
    page_info, agent_info = page["openInfo"], report["agent_open_info"]
    for info in (page_info[mine[UNORDERED]], agent_info[theirs[UNORDERED]]):
        assert info["ordered"] is False and info["maxRetransmits"] == 0, info
    for info in (page_info[mine[RELIABLE]], agent_info[theirs[RELIABLE]]):
        assert info["ordered"] is True and info["maxRetransmits"] is None, info
        assert info["protocol"] == "interop", info
    # stream ids: the DTLS client opens even ids, the server odd ones (RFC 8832 6)
    ids = {label: info["id"] for label, info in page_info.items()}
    assert len(set(ids.values())) == 4
    assert {ids[x] % 2 for x in mine.values()} != {ids[x] % 2 for x in theirs.values()}

    # close from either side is seen by the other as close
    closed, events = report["page_closed"], report["agent_events"]
    assert [mine[RELIABLE], "close"] in closed["events"]
    assert [theirs[RELIABLE], "close"] in closed["events"]
    assert (theirs[RELIABLE], "close") in events and (mine[RELIABLE], "close") in events
    assert report["after_close"] >= 1
    assert closed["channels"][mine[UNORDERED]]["readyState"] == "open"
    assert closed["channels"][theirs[UNORDERED]]["readyState"] == "open"

    # the page's getStats() counters agree with what the Python end counted
    page_stats = report["page_stats"]["channels"]
    for label, counters in report["agent_counters"].items():
        stat = page_stats[label]
        assert stat["messagesReceived"] == counters["messages_sent"], (label, stat, counters)
        assert stat["bytesReceived"] == counters["bytes_sent"], (label, stat, counters)
        assert stat["messagesSent"] == counters["messages_received"], (label, stat, counters)
        assert stat["bytesSent"] == counters["bytes_received"], (label, stat, counters)
    assert page_stats[theirs[RELIABLE]]["messagesSent"] == len(sent)
    assert page_stats[theirs[RELIABLE]]["bytesSent"] == message_bytes(sent)
    for label, ours in report["ours_channel_stats"].items():
        stat, counters = page_stats[label], report["agent_counters"][label]
        for ours_name, page_name in (("messages_sent", "messagesReceived"),
                                     ("bytes_sent", "bytesReceived"),
                                     ("messages_received", "messagesSent"),
                                     ("bytes_received", "bytesSent")):
            if ours_name in ours:
                assert ours[ours_name] == stat[page_name] == counters[ours_name], (
                    label, ours_name, ours, stat)
    opened = report["page_stats_closed"]["peerConnection"]
    assert opened["dataChannelsOpened"] == 4 and opened["dataChannelsClosed"] == 2, (
        report["page_stats_closed"])

    # the wire: one DTLS session, decrypted, carrying DCEP and messages both ways
    assert len(report["wire"]) == 1, report["wire"]
    wire = report["wire"][0]
    assert wire["undecryptable"] == 0
    for side in ("client", "server"):
        data = report["wire_data"][0][side]
        assert data.get("DCEP", 0) >= 2, data  # an OPEN of its own, an ACK of the other's
        assert data.get("empty-string", 0) >= 1 and data.get("empty-binary", 0) >= 1, data
    assert wire["client_chunks"].get("RE_CONFIG", 0) + wire["server_chunks"].get(
        "RE_CONFIG", 0) >= 2  # each close is a stream reset request
    # maxRetransmits 0 on the wire: no TSN of an unordered channel's stream is ever
    # sent twice, by either end (a lost one is skipped with FORWARD-TSN instead)
    unordered_streams = {page_info[label]["id"] for label in (mine[UNORDERED],
                                                              theirs[UNORDERED])}
    for side, by_stream in wire["retransmitted_by_stream"].items():
        again = {int(k): v for k, v in by_stream.items()}
        assert not unordered_streams & set(again), (side, again, unordered_streams)


def _print(report: dict[str, Any], name: str) -> None:
    """Print the facts worth reading in a CI log; keep the whole report as an artifact."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    slug = name.replace(" ", "-").replace("(", "").replace(")", "")
    path = ARTIFACTS / f"datachannel-{slug}-{report['mode']}.json"
    path.write_text(json.dumps(report, indent=1, default=str))
    stats = report["page_stats"]["channels"]
    print(f"\n[{name}, page mode {report['mode']}{', SNAP' if report['snap'] else ''}] "
          f"transport {json.dumps(report['page_stats']['transport'])}")
    print(f"  page sctp: {json.dumps(report['page_exchange']['sctp'])}; "
          f"python end: {json.dumps(report['python_sctp'], default=str)}")
    for label, stat in sorted(stats.items()):
        print(f"  page getStats {label}: {json.dumps(stat)}")
    for wire in report["wire"]:
        print(f"  wire: {json.dumps(wire)}")
    print(f"  wire DATA by PPID: {json.dumps(report['wire_data'])}")
    print("  unordered (maxRetransmits 0) arrivals: " + json.dumps({
        label: len(got) for label, got in report["page_exchange"]["received"].items()
        if label.endswith(UNORDERED)} | {
        f"python:{label}": len(got) for label, got in report["agent_received"].items()
        if label.endswith(UNORDERED)}))


@pytest.mark.timeout(90)
@pytest.mark.parametrize("mode", ["offer", "answer"], ids=["chromium-offers", "aiortc-offers"])
def test_harness_chromium_and_aiortc_run_the_datachannel_script(
        mode: str, tmp_path: Path) -> None:
    """The harness itself, with aiortc as the Python end: page, agent, stats, capture."""
    keylog = tmp_path / "aiortc.keylog"

    async def scenario() -> dict[str, Any]:
        end = AiortcChannelPeer("aiortc")
        try:
            with aiortc_keylog(keylog):
                return await chromium_script(end, mode, keylog)
        finally:
            await end.close()

    report = run_in_loopback_netns(scenario, timeout=75)
    _print(report, "chromium vs aiortc")
    check_report(report, "aiortc")
    # aiortc speaks no SNAP: the association starts with the INIT exchange
    names = [chunk for _, chunk in report["wire"][0]["handshake_chunks"]]
    assert {"INIT", "INIT_ACK", "COOKIE_ECHO", "COOKIE_ACK"} <= set(names), names


def _ours(prefix: str) -> Any:
    from tests.browser.ours_datachannel import OursChannelPeer

    return OursChannelPeer(prefix)


@pytest.mark.timeout(90)
@pytest.mark.parametrize("mode", ["offer", "answer"],
                         ids=["chromium-offers", "securepeer-offers"])
def test_chromium_and_securepeer_datachannels(mode: str, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    keylog = tmp_path / "ours.keylog"
    monkeypatch.setenv("SSLKEYLOGFILE", str(keylog))

    async def scenario() -> dict[str, Any]:
        end = _ours("ours")
        try:
            return await chromium_script(end, mode, keylog)
        finally:
            await end.close()

    report = run_in_loopback_netns(scenario, timeout=75)
    _print(report, "chromium vs securepeer")
    check_report(report, "ours")
    # our channels keep their own counters: they were compared with the page's
    assert set(report["ours_channel_stats"]) == set(report["agent_counters"])
    # without SNAP, the association starts with the INIT exchange
    names = [chunk for _, chunk in report["wire"][0]["handshake_chunks"]]
    assert {"INIT", "INIT_ACK", "COOKIE_ECHO", "COOKIE_ACK"} <= set(names), names


@pytest.mark.timeout(90)
@pytest.mark.parametrize("mode", ["offer", "answer"],
                         ids=["chromium-offers", "securepeer-offers"])
def test_chromium_snap_association_without_init(mode: str, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """SNAP (``a=sctp-init`` in both descriptions): no INIT exchange on the wire."""
    keylog = tmp_path / "ours.keylog"
    monkeypatch.setenv("SSLKEYLOGFILE", str(keylog))

    async def scenario() -> dict[str, Any]:
        end = _ours("ours")
        try:
            return await chromium_script(end, mode, keylog, snap=True)
        finally:
            await end.close()

    report = run_in_loopback_netns(scenario, timeout=75)
    _print(report, "chromium (SNAP) vs securepeer")
    assert "a=sctp-init:" in report["browser_sdp"]
    assert "a=sctp-init:" in report["python_sdp"]
    check_report(report, "ours")
    wire = report["wire"][0]
    assert wire["handshake_chunks"] == [], wire
    assert wire["first_packets"], wire

