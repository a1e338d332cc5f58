import json

from emeuse.kernel.declare import CodecOf, JsonCodec
from emeuse.kernel.framing import COMPRESS_ABOVE, Framed, pack, unpack


def test_a_large_value_is_stored_compressed_and_read_back_whole() -> None:
    state = {"seen": [f"r-{n:036d}" for n in range(200)], "history": [2.5] * 40}
    codec = Framed(JsonCodec())
    stored = codec.encode(state)
    assert len(stored) < len(JsonCodec().encode(state)) / 2
    assert codec.decode(stored) == state


def test_a_small_value_is_stored_as_it_is() -> None:
    raw = json.dumps({"version": 3}).encode()
    assert len(raw) <= COMPRESS_ABOVE
    assert pack(raw) == raw
    assert Framed(JsonCodec()).decode(raw) == {"version": 3}


def test_values_written_before_compression_are_still_read() -> None:
    # A changelog written by the kernel before it compressed, or by a tool that does not.
    raw = json.dumps({"latest": "x" * 2000}).encode()
    assert unpack(raw) == raw
    assert Framed(JsonCodec()).decode(raw) == {"latest": "x" * 2000}


def test_framing_keeps_whether_decoded_values_may_be_shared() -> None:
    assert Framed(CodecOf(bytes, bytes)).shared is True
    assert Framed(JsonCodec()).shared is False
