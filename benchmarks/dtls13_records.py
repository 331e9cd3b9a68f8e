"""Per-record cost of the DTLS 1.3 record layer next to our DTLS 1.2 one.

    .venv/bin/python benchmarks/dtls13_records.py [--records N] [--size 1200]

For each suite, microseconds of CPU per record (``time.process_time``, median of
rounds) for:

- 1.2 seal, and split + open: ``records.RecordProtection`` with ``split_records``
  and the replay window (the DTLS 1.2 record path without the connection's own
  bookkeeping, which both versions will pay);
- 1.3 protect: ``SendEpoch.protect_application_data``, the connected send path
  (inner plaintext, AEAD, record number mask, unified header);
- 1.3 protect x8: ``SendEpoch.protect_application_data_many`` on batches of 8
  records (what ``DtlsConnection.send_many`` uses for a flush of SCTP packets): the
  same records, the masks of a batch from one AES-ECB call;
- 1.3 read: ``ReceiveEpoch.read_application_data``, the connected receive path (the
  next in-order record: header check, mask, AEAD, inner content type; the replay
  window is kept lazily);
- 1.3 split + open: the general receive path, ``split_datagram`` and
  ``ReceiveEpoch.open_record`` (header parse, mask, sequence reconstruction, AEAD,
  replay window, inner plaintext).

The difference is what DTLS 1.3 adds per record: one AES block (or one ChaCha20
re-nonce) for the record number mask each way, and the inner content type. The
connection-level rows (send, hand-off and receive through DtlsConnection, 1.3
against 1.2 in the same run) are in benchmarks/dtls.py, part of ``make bench``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable

from webrtc_secure.dtls import keys13
from webrtc_secure.dtls.records import RecordProtection, split_records
from webrtc_secure.dtls.records13 import (
    CiphertextRecord,
    ReceiveEpoch,
    SendEpoch,
    split_datagram,
)
from webrtc_secure.dtls.suites import SUITES, CipherSuite
from webrtc_secure.dtls.suites13 import SUITES13, CipherSuite13
from webrtc_secure.replay import ReplayWindow

#: records per call of the batched send path (SCTP's packets of one flush)
BATCH = 8

PAIRS = (
    (CipherSuite.ECDHE_ECDSA_AES_128_GCM_SHA256, CipherSuite13.TLS_AES_128_GCM_SHA256),
    (CipherSuite.ECDHE_ECDSA_AES_256_GCM_SHA384, CipherSuite13.TLS_AES_256_GCM_SHA384),
    (
        CipherSuite.ECDHE_ECDSA_CHACHA20_POLY1305_SHA256,
        CipherSuite13.TLS_CHACHA20_POLY1305_SHA256,
    ),
)


def _per_record_us(run: Callable[[int], None], records: int, rounds: int) -> float:
    samples = []
    for _ in range(rounds):
        start = time.process_time()
        run(records)
        samples.append((time.process_time() - start) / records * 1e6)
    return statistics.median(samples)


def _measure_pair(
    suite12_id: CipherSuite, suite13_id: CipherSuite13, payload: bytes, records: int, rounds: int
) -> dict[str, object]:
    suite12 = SUITES[suite12_id]
    protection = RecordProtection(
        suite12, bytes(suite12.key_length), bytes(suite12.fixed_iv_length)
    )
    wire12 = [protection.seal(23, 0xFEFD, (1 << 48) | i, payload) for i in range(records)]

    def seal12(n: int) -> None:
        for i in range(n):
            protection.seal(23, 0xFEFD, (1 << 48) | i, payload)

    def open12(n: int) -> None:
        window = ReplayWindow()
        for i in range(n):
            (record,), _clean = split_records(wire12[i])
            ctype, version, epoch_seq, fragment = record
            seq = epoch_seq & 0xFFFFFFFFFFFF
            if window.is_fresh(seq):
                protection.open(ctype, version, epoch_seq, fragment)
                window.commit(seq)

    suite13 = SUITES13[suite13_id]
    secret = bytes(keys13.digest_size(suite13.hash_name))
    keys = keys13.traffic_keys(suite13.hash_name, secret, suite13.key_length)
    wire13 = [b""] * records

    def protect13(n: int) -> None:
        protect = SendEpoch(suite13, keys, 3).protect_application_data
        for i in range(n):
            wire13[i] = protect(payload)

    def protect13_batch(n: int) -> None:
        protect_many = SendEpoch(suite13, keys, 3).protect_application_data_many
        batch = [payload] * BATCH
        for _ in range(n // BATCH):
            protect_many(batch)

    def read13(n: int) -> None:
        read = ReceiveEpoch(suite13, keys, 3).read_application_data
        for i in range(n):
            if read(wire13[i]) is None:
                raise RuntimeError("the connected receive path declined a record")

    def open13(n: int) -> None:
        receiver = ReceiveEpoch(suite13, keys, 3)
        for i in range(n):
            parsed, _clean = split_datagram(wire13[i])
            record = parsed[0]
            assert isinstance(record, CiphertextRecord)
            receiver.open_record(record)

    protect13(records)  # fill wire13 for the open rounds
    return {
        "suite": suite13_id.name,
        "1.2 seal": _per_record_us(seal12, records, rounds),
        "1.2 split+open": _per_record_us(open12, records, rounds),
        "1.3 protect": _per_record_us(protect13, records, rounds),
        f"1.3 protect x{BATCH}": _per_record_us(protect13_batch, records, rounds),
        "1.3 read": _per_record_us(read13, records, rounds),
        "1.3 split+open": _per_record_us(open13, records, rounds),
    }


def measure(records: int, size: int, rounds: int) -> list[dict[str, object]]:
    payload = bytes(range(256)) * (size // 256) + bytes(size % 256)
    return [_measure_pair(s12, s13, payload, records, rounds) for s12, s13 in PAIRS]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=20000)
    parser.add_argument("--size", type=int, default=1200)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    rows = measure(args.records, args.size, args.rounds)
    columns = [
        "1.2 seal",
        "1.2 split+open",
        "1.3 protect",
        f"1.3 protect x{BATCH}",
        "1.3 read",
        "1.3 split+open",
    ]
    print(f"us per {args.size}-octet record (CPU time, median of {args.rounds} rounds)")
    print(f"{'suite':32}" + "".join(f"{c:>16}" for c in columns))
    for row in rows:
        cells = "".join(f"{row[c]:>16.2f}" for c in columns)  # type: ignore[str-format]
        print(f"{row['suite']!s:32}{cells}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
