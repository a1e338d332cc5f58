"""Table values as the changelog carries them and the store keeps them.

A state document of a few kB (a chronic patient's alerts, history and recent ids) is most of
what a service writes: several times the size of its inputs. So a value above a few hundred
bytes is compressed (lz4: a 24 kB document in ~13 us, to under a third), and a small one kept
as it is. A compressed value starts with a zero byte, which no JSON document and no protobuf
message starts with (field number 0 does not exist), so values written before, or by a tool
that does not compress, are read as they are.
"""

from __future__ import annotations

from typing import Any

import lz4.block

from emeuse.kernel.declare import ValueCodec

_LZ4 = b"\x00\x04"
# Below this, compressing saves too little to be worth its cost on every read.
COMPRESS_ABOVE = 512


def pack(raw: bytes) -> bytes:
    if len(raw) <= COMPRESS_ABOVE:
        return raw
    return _LZ4 + lz4.block.compress(raw, store_size=True)


def unpack(data: bytes) -> bytes:
    if data[:2] == _LZ4:
        return lz4.block.decompress(data[2:])
    return data


class Framed:
    """A table's codec, with its values compressed when large (see above)."""

    def __init__(self, codec: ValueCodec) -> None:
        self.codec = codec
        self.shared = getattr(codec, "shared", False)

    def encode(self, value: Any) -> bytes:
        return pack(self.codec.encode(value))

    def decode(self, data: bytes) -> Any:
        return self.codec.decode(unpack(data))
