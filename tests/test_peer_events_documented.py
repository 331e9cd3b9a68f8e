"""Every event SecurePeer emits is documented, with its arguments, in the class
docstring's table and in the README's "Using it" table (issue 13 item 5).

The emitted events are read from peer.py itself (every ``_deliver("...")``,
``emit("...")``, the per-packet ``event = "..."`` and ``_emit_error``), so an event
added later without its documentation fails here.
"""

from __future__ import annotations

import re
from pathlib import Path

from webrtc_secure import peer
from webrtc_secure.peer import SecurePeer

ROOT = Path(__file__).resolve().parents[1]

#: the events the issue names (``datachannel`` comes with the data channel branch)
NAMED = {
    "state",
    "error",
    "closed",
    "rtp",
    "rtcp",
    "datachannel-ready",
    "media-ready",
    "icecandidate",
    "datachannel",
}


def emitted() -> dict[str, bool]:
    """Event name -> whether it is emitted with arguments, from peer.py's source."""
    source = Path(peer.__file__).read_text()
    events: dict[str, bool] = {}
    for name, after in re.findall(r'(?:_deliver|\bemit)\(\s*"([\w-]+)"\s*([,)])', source):
        events[name] = events.get(name, False) or after == ","
    for name in re.findall(r'_(?:deliver_media|media_handlers)\(\s*"([\w-]+)"', source):
        events[name] = True  # the media path's handlers get the packet
    if "_emit_error(" in source:
        events["error"] = True
    return events


def docstring_table() -> dict[str, str]:
    """The class docstring's event table: name -> its arguments column."""
    doc = SecurePeer.__doc__ or ""
    lines = doc.splitlines()
    rules = [i for i, line in enumerate(lines) if re.fullmatch(r"\s*=+( +=+)+\s*", line)]
    assert len(rules) >= 3, "no event table in SecurePeer's docstring"
    header, end = rules[1], rules[2]
    spans = [m.span() for m in re.finditer(r"=+", lines[rules[0]])]
    rows: dict[str, str] = {}
    current = None
    for line in lines[header + 1 : end]:
        cells = [line[a : b if i < len(spans) - 1 else None].strip() for i, (a, b) in
                 enumerate(spans)]
        if cells[0]:
            current = cells[0].strip("`")
            rows[current] = cells[1]
        elif current is not None:
            rows[current] += " " + cells[1]
    return rows


def readme_table() -> dict[str, str]:
    """The README's event table in "Using it": name -> its arguments column."""
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## Using it") : text.index("## Command line")]
    return {
        name: arguments.strip()
        for name, arguments in re.findall(r"^\| `([\w-]+)` \| ([^|]+) \|", section, re.M)
    }


def test_every_emitted_and_named_event_is_documented_with_its_arguments() -> None:
    events = emitted()
    # the scan sees what the issue names (datachannel only once that branch is in)
    assert NAMED - {"datachannel"} <= set(events), events
    for where, table in (("docstring", docstring_table()), ("README", readme_table())):
        missing = (set(events) | NAMED) - set(table)
        assert not missing, f"{where} does not document {sorted(missing)}"
        for name, with_arguments in events.items():
            arguments = table[name]
            assert arguments, f"{where}: no arguments column for {name}"
            says_none = arguments.split()[0].lower() == "none"
            assert says_none != with_arguments, (
                f"{where}: {name} is emitted {'with' if with_arguments else 'without'} "
                f"arguments, documented as {arguments!r}"
            )
