from __future__ import annotations

import gzip

import orjson
import pytest

from harvester.lake.chunks import ChunkEncoder, extension

BODIES = [orjson.dumps({"id": i, "title": f"T{i}", "credits": {"cast": [{"n": "x" * i}]}}) for i in range(5)]


@pytest.mark.parametrize("compression", ["none", "gzip"])
def test_json_array_embeds_bodies_verbatim(compression: str) -> None:
    enc = ChunkEncoder("json", compression)  # type: ignore[arg-type]
    for b in BODIES:
        enc.add(b)
    data = enc.finish()
    if compression == "gzip":
        data = gzip.decompress(data)
    assert data == b"[" + b",".join(BODIES) + b"]"
    assert orjson.loads(data) == [orjson.loads(b) for b in BODIES]
    assert enc.count == 5


def test_jsonl_one_record_per_line_even_for_pretty_bodies() -> None:
    enc = ChunkEncoder("jsonl", "none")
    pretty = orjson.dumps({"a": [1, 2], "b": "x\\ny"}, option=orjson.OPT_INDENT_2)
    enc.add(BODIES[0])
    enc.add(pretty)
    lines = enc.finish().splitlines()
    assert [orjson.loads(x) for x in lines] == [orjson.loads(BODIES[0]), orjson.loads(pretty)]


def test_empty_chunk_is_valid_json() -> None:
    assert ChunkEncoder("json", "none").finish() == b"[]"


def test_extensions() -> None:
    assert extension("json", "none") == ".json"
    assert extension("jsonl", "gzip") == ".jsonl.gz"
