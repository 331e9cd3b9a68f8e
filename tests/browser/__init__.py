"""Interop harness: headless Chromium and aiortc peers in a loopback-only namespace.

Modules:

* :mod:`tests.browser.netns`: run a coroutine in a worker thread moved into a private
  network namespace with only ``lo`` (plus 127.0.0.2, which aioice will gather).
* :mod:`tests.browser.cdp`: launch Chromium (own process group, temp profile, fake media)
  and drive it over ``--remote-debugging-pipe``; stdlib only.
* :mod:`tests.browser.server`: stdlib HTTP server for ``examples/browser`` and the SDP
  signaling endpoints, in front of any ``SignalingHandler``.
* :mod:`tests.browser.session`: ``browser_session(handler, mode=...)`` ties the above
  together; ``wait_stats(video_playing)`` polls the page's ``window.stats()``.
* :mod:`tests.browser.capture`: sniff and decode DTLS ClientHello/ServerHello on ``lo``.
* :mod:`tests.browser.aiortc_peer`: aiortc media peer (sine audio, moving-bar video,
  frame-counting sinks, optional decoded echo).
* :mod:`tests.browser.sdp_media` and :mod:`tests.browser.rtp_peer`: full media SDP around
  bare transport parameters, and an RTP-level echo peer with SecurePeer's shape.
* :mod:`tests.browser.record_fixtures`: refresh the recorded Chromium fixtures.

Wiring SecurePeer in: write a ``SignalingHandler`` whose ``answer(offer_sdp)`` lets
SecurePeer answer, then returns ``media_answer(offer_sdp,
TransportParams.from_sdp(<SecurePeer's answer SDP>), ssrcs)`` and starts
``peer.connect(...)`` in a task; ``offer()``/``accept_answer()`` likewise with
``media_offer``. Echo each ``"rtp"`` event back with ``rewrite_ssrc(packet,
ssrcs[kind])`` (kind from the payload type, see ``AiortcRtpPeer._on_rtp``), then reuse
``test_chromium_decodes_rtp_echo_from_rtp_level_peer`` with that handler.
"""
