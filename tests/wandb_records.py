"""Read what W&B wrote offline: the records of a run's ``run-<id>.wandb`` file.

W&B no longer ships a reader of its own, so this follows the file's layout by hand: a 7-byte
header (``:W&B``, magic, version), then 32 KiB blocks of chunks, each a 7-byte header (checksum,
length, type: 1 whole, 2 first, 3 middle, 4 last part of a record) and the bytes of a protobuf
``Record``; a block's tail shorter than a chunk header is padding.
"""

import struct
from collections.abc import Iterator
from pathlib import Path

from wandb.proto import wandb_internal_pb2

BLOCK, HEADER = 32768, 7


def records(path: Path) -> Iterator[wandb_internal_pb2.Record]:
    """Every record of the file, in the order W&B wrote them."""
    data = path.read_bytes()
    assert data[:4] == b":W&B", data[:HEADER]
    position, parts = HEADER, b""
    while position + HEADER <= len(data):
        if BLOCK - position % BLOCK < HEADER:
            position += BLOCK - position % BLOCK
            continue
        _, length, kind = struct.unpack("<IHB", data[position:position + HEADER])
        if kind == 0:  # zeros: the end of what was written
            break
        parts += data[position + HEADER:position + HEADER + length]
        position += HEADER + length
        if kind in (1, 4):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(parts)
            parts = b""
            yield record


def offline_run(run_dir: Path) -> dict:
    """The offline W&B run of a run folder: its run record, the metrics defined with a summary,
    the summary values set (JSON text by key) and the exit code."""
    (log,) = (run_dir / "wandb").glob("offline-run-*/run-*.wandb")
    found: dict = {"metrics": {}, "summary": {}, "exit_code": None}
    for record in records(log):
        kind = record.WhichOneof("record_type")
        if kind == "run":
            found["run"] = record.run
        elif kind == "metric" and record.metric.name:
            found["metrics"][record.metric.name] = record.metric.summary
        elif kind == "summary":
            found["summary"] |= {u.key or "/".join(u.nested_key): u.value_json for u in record.summary.update}
        elif kind == "exit":
            found["exit_code"] = record.exit.exit_code
    return found
