"""Coverage-guided fuzzing (atheris/libFuzzer) of webrtc_secure's parsers and engines."""
