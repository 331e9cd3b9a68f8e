"""Echo peer example: ``python examples/echo_peer.py --role answer`` in one terminal,
``python examples/echo_peer.py --role offer`` in another (signaling over loopback TCP),
or add ``--signal stdin`` to both and copy-paste the descriptions."""

from __future__ import annotations

import sys

from webrtc_secure.__main__ import main

if __name__ == "__main__":
    sys.exit(main(["echo", *sys.argv[1:]]))
