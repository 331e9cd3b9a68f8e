"""Data channels against aiortc (its own SCTP in Python, OpenSSL DTLS, aioice), both
offer/answer directions, in a loopback-only network namespace.

Both ends run the same script (:mod:`tests.browser.dc_agent`): each opens a reliable
ordered channel (protocol "interop") and an unordered channel with maxRetransmits 0,
sends text, non-ASCII text, binary, empty text, empty binary, 64 KiB text and 256 KiB
binary on the reliable one and forty small messages on the unordered one, and echoes
everything arriving on the other end's channels. Asserted on both ends: every message
intact (type, length, SHA-256) and in order on the ordered channels; the other end's
channels arrive with the properties they were opened with (DCEP); a channel closed by
either end is seen by the other as ``close`` (stream reset); what each end counted
sending is what the other counted receiving.

The same script between two aiortc peers is the harness check.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest

from tests.browser.aiortc_datachannel import AiortcChannelPeer
from tests.browser.dc_agent import (
    RELIABLE,
    UNORDERED,
    ChannelAgent,
    described,
    strip_names,
    suite,
    unordered_suite,
)
from tests.browser.netns import run_in_loopback_netns

pytestmark = pytest.mark.interop


async def python_script(offerer: Any, answerer: Any) -> dict[str, Any]:
    """Signal (SDP text only), connect, run the script, close one channel each way."""
    answer = await answerer.answer(await offerer.offer())
    await offerer.accept_answer(answer)
    await offerer.wait_connected(15)
    await answerer.wait_connected(15)
    a, b = offerer.agent, answerer.agent
    everything = [a.reliable, a.unordered, b.reliable, b.unordered]
    await a.wait_open(everything)
    await b.wait_open(everything)
    n, u = len(suite()), len(unordered_suite())
    a.send(a.reliable)
    b.send(b.reliable)
    for agent in (a, b):
        for label in (a.reliable, b.reliable):
            await agent.wait_received(label, n, timeout=20)
    # maxRetransmits 0 may lose messages: wait until all arrived or none for 1 s
    a.send(a.unordered, UNORDERED)
    b.send(b.unordered, UNORDERED)
    for agent in (a, b):
        for label in (a.unordered, b.unordered):
            await agent.wait_settled(label, u)
    received = {agent.prefix: {k: list(v) for k, v in agent.received.items()}
                for agent in (a, b)}
    counters = {agent.prefix: {k: dict(vars(v)) for k, v in agent.counters.items()}
                for agent in (a, b)}
    channel_stats = {agent.prefix: _channel_stats(agent) for agent in (a, b)}
    # either end closes its own reliable channel; both ends see both closes
    a.close(a.reliable)
    b.close(b.reliable)
    for agent in (a, b):
        await agent.wait_closed(a.reliable)
        await agent.wait_closed(b.reliable)
    # the unordered channels still work after that
    before = len(a.received[a.unordered])
    for _ in range(5):
        a.channels[a.unordered].send("after close")
    after_close = await a.wait_settled(a.unordered, before + 5) - before
    return {
        "offerer": a.prefix,
        "after_close": after_close,
        "answerer": b.prefix,
        "received": received,
        "counters": counters,
        "channel_stats": channel_stats,
        "open_info": {agent.prefix: dict(agent.open_info) for agent in (a, b)},
        "events": {agent.prefix: list(agent.events) for agent in (a, b)},
        "errors": {agent.prefix: list(agent.errors) for agent in (a, b)},
        "states": {agent.prefix: agent.summary()["states"] for agent in (a, b)},
        "sctp": {end.agent.prefix: end.sctp_info() for end in (offerer, answerer)},
    }


def _channel_stats(agent: ChannelAgent) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for label, channel in agent.channels.items():
        stats = getattr(channel, "stats", None)
        if callable(stats):
            stats = stats()
        if stats is not None and not callable(stats):
            out[label] = stats if isinstance(stats, dict) else dict(vars(stats))
    return out


def _multiset(descriptions: list[dict[str, Any]]) -> Counter[str]:
    return Counter(json.dumps(d, sort_keys=True) for d in descriptions)


def check_python_report(report: dict[str, Any]) -> None:
    sent = strip_names(described(suite()))
    sent_unordered = _multiset(strip_names(described(unordered_suite())))
    assert report["after_close"] >= 1
    ends = (report["offerer"], report["answerer"])
    for me, other in (ends, ends[::-1]):
        got = report["received"][me]
        # mine came back echoed, theirs arrived: intact and in order
        assert got[f"{me}-{RELIABLE}"] == sent
        assert got[f"{other}-{RELIABLE}"] == sent
        # unordered, maxRetransmits 0: what arrives is intact, never duplicated, and
        # messages do arrive (loss is allowed); echoes only of what the other end got
        theirs_got = report["received"][other]
        for label in (f"{me}-{UNORDERED}", f"{other}-{UNORDERED}"):
            assert got[label]
            assert not _multiset(got[label]) - sent_unordered, label
        assert not _multiset(got[f"{me}-{UNORDERED}"]) - _multiset(
            theirs_got[f"{me}-{UNORDERED}"])
        # the other end's channels arrived as opened (DCEP)
        info = report["open_info"][me]
        assert info[f"{other}-{UNORDERED}"]["ordered"] is False
        assert info[f"{other}-{UNORDERED}"]["maxRetransmits"] == 0
        assert info[f"{other}-{RELIABLE}"]["ordered"] is True
        assert info[f"{other}-{RELIABLE}"]["maxRetransmits"] is None
        assert info[f"{other}-{RELIABLE}"]["protocol"] == "interop"
        # both closes seen as close; the unordered channels still open
        events = [tuple(e) for e in report["events"][me]]
        assert (f"{me}-{RELIABLE}", "close") in events
        assert (f"{other}-{RELIABLE}", "close") in events
        states = report["states"][me]
        assert states[f"{me}-{UNORDERED}"] == states[f"{other}-{UNORDERED}"] == "open"
        assert not report["errors"][me]
        # what one end counted sending, the other counted receiving, per channel
        mine, theirs = report["counters"][me], report["counters"][other]
        for label, counters in mine.items():
            assert counters["messages_sent"] == theirs[label]["messages_received"], label
            assert counters["bytes_sent"] == theirs[label]["bytes_received"], label
        # and a stack's own per-channel counters (where it keeps them) agree
        for label, stats in report["channel_stats"][me].items():
            for name in ("messages_sent", "bytes_sent", "messages_received",
                         "bytes_received"):
                if name in stats:
                    assert stats[name] == mine[label][name], (me, label, name, stats)
    # stream ids: one end even, the other odd (RFC 8832 6, by DTLS role)
    ids = {label: info["id"] for label, info in report["open_info"][ends[0]].items()}
    parity = {end: {ids[f"{end}-{kind}"] % 2 for kind in (RELIABLE, UNORDERED)}
              for end in ends}
    assert len(parity[ends[0]]) == len(parity[ends[1]]) == 1
    assert parity[ends[0]] != parity[ends[1]]


def _print(report: dict[str, Any], name: str) -> None:
    print(f"\n[{name}] offerer {report['offerer']}, answerer {report['answerer']}; "
          f"sctp {json.dumps(report['sctp'], default=str)}")
    for end, counters in report["counters"].items():
        print(f"  {end} counted: {json.dumps(counters)}")
    print("  unordered (maxRetransmits 0) arrivals: " + json.dumps(
        {f"{end}:{label}": len(got) for end, received in report["received"].items()
         for label, got in received.items() if label.endswith(UNORDERED)}))
    for end, stats in report["channel_stats"].items():
        if stats:
            print(f"  {end} channel stats: {json.dumps(stats, default=str)}")


@pytest.mark.timeout(60)
def test_harness_two_aiortc_peers_run_the_datachannel_script() -> None:
    """The script between two aiortc peers: the harness holds before ours is in it."""

    async def scenario() -> dict[str, Any]:
        a, b = AiortcChannelPeer("aiortc1"), AiortcChannelPeer("aiortc2")
        try:
            return await python_script(a, b)
        finally:
            await a.close()
            await b.close()

    report = run_in_loopback_netns(scenario, timeout=50)
    _print(report, "aiortc vs aiortc")
    check_python_report(report)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("offerer", ["aiortc-offers", "securepeer-offers"])
def test_securepeer_and_aiortc_datachannels(offerer: str) -> None:
    from tests.browser.ours_datachannel import OursChannelPeer

    async def scenario() -> dict[str, Any]:
        ours, theirs = OursChannelPeer("ours"), AiortcChannelPeer("aiortc")
        try:
            if offerer == "aiortc-offers":
                return await python_script(theirs, ours)
            return await python_script(ours, theirs)
        finally:
            await ours.close()
            await theirs.close()

    report = run_in_loopback_netns(scenario, timeout=50)
    _print(report, f"securepeer vs aiortc, {offerer}")
    check_python_report(report)
    # our channels keep their own counters: they must have been compared
    assert set(report["channel_stats"]["ours"]) == set(report["counters"]["ours"])
