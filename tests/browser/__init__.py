"""Interop harness: headless Chromium and aiortc peers in a loopback-only namespace.

* :mod:`tests.browser.netns`: run a coroutine in a private network namespace (lo only).
* :mod:`tests.browser.cdp`: launch Chromium and drive it over ``--remote-debugging-pipe``.
* :mod:`tests.browser.server`: stdlib HTTP server for the page and SDP signaling.
* :mod:`tests.browser.aiortc_peer`: aiortc sources, frame-counting sink, SDP-string peer.
* :mod:`tests.browser.capture`: sniff and decode DTLS ClientHellos on ``lo``.
* :mod:`tests.browser.session`: one call that runs page + browser + Python peer.
"""
