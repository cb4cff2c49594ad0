"""A numpy reader for TensorFlow "tensor bundle" checkpoints (`.index` + data shard).

The musicnn wheel ships TF1 checkpoints; reading them needs no TensorFlow. The `.index` file is an
SSTable (LevelDB table format): data blocks of prefix-compressed key/value entries, an index block
pointing at them, and a 48-byte footer. The empty key holds the BundleHeaderProto; every other key
is a variable name whose value is a BundleEntryProto (dtype, shape, shard, offset, size) locating
the raw little-endian tensor bytes in the data shard.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

TABLE_MAGIC = 0xDB4775248B80FB57
FOOTER_SIZE = 48
BLOCK_TRAILER_SIZE = 5  # compression type byte + masked crc32c
DATA_SHARD = ".data-00000-of-00001"

# tensorflow/core/framework/types.proto DataType → numpy little-endian dtype
DTYPES: dict[int, str] = {1: "<f4", 2: "<f8", 3: "<i4", 4: "|u1", 6: "|i1", 9: "<i8", 10: "|b1"}


class BundleError(ValueError):
    """The files are not a readable tensor bundle."""


@dataclass(frozen=True)
class Entry:
    """Where one tensor lives in the data shard (BundleEntryProto)."""

    dtype: int
    shape: tuple[int, ...]
    shard_id: int
    offset: int
    size: int


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data):
            raise BundleError("truncated varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise BundleError("varint too long")


def _fields(data: bytes) -> list[tuple[int, int | bytes]]:
    """The (field number, value) pairs of a protobuf message: ints for varint/fixed, else bytes."""
    out: list[tuple[int, int | bytes]] = []
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        value: int | bytes
        if wire == 0:
            value, pos = _varint(data, pos)
        elif wire == 1:
            value, pos = int.from_bytes(data[pos : pos + 8], "little"), pos + 8
        elif wire == 5:
            value, pos = int.from_bytes(data[pos : pos + 4], "little"), pos + 4
        elif wire == 2:
            length, pos = _varint(data, pos)
            value, pos = data[pos : pos + length], pos + length
        else:
            raise BundleError(f"unsupported protobuf wire type {wire}")
        if pos > len(data):
            raise BundleError("truncated protobuf field")
        out.append((number, value))
    return out


def _shape(data: bytes) -> tuple[int, ...]:
    """TensorShapeProto: repeated Dim dim = 2 {int64 size = 1}."""
    dims: list[int] = []
    for number, value in _fields(data):
        if number == 2 and isinstance(value, bytes):
            size = next((v for n, v in _fields(value) if n == 1 and isinstance(v, int)), 0)
            dims.append(size)
    return tuple(dims)


def parse_entry(data: bytes) -> Entry:
    values: dict[int, int] = {}
    shape: tuple[int, ...] = ()
    for number, value in _fields(data):
        if number == 2 and isinstance(value, bytes):
            shape = _shape(value)
        elif number == 7:
            raise BundleError("sliced tensors are not supported")
        elif isinstance(value, int):
            values[number] = value
    return Entry(
        dtype=values.get(1, 0),
        shape=shape,
        shard_id=values.get(3, 0),
        offset=values.get(4, 0),
        size=values.get(5, 0),
    )


def _block(table: bytes, handle: bytes, pos: int = 0) -> tuple[bytes, int]:
    """The block a BlockHandle (offset and size varints, at `pos` in `handle`) points at, and the
    position after the handle."""
    offset, pos = _varint(handle, pos)
    size, pos = _varint(handle, pos)
    end = offset + size
    if end + BLOCK_TRAILER_SIZE > len(table):
        raise BundleError("block handle points past the end of the index file")
    if table[end] != 0:
        raise BundleError("compressed index blocks are not supported")
    return table[offset:end], pos


def _block_entries(block: bytes) -> list[tuple[bytes, bytes]]:
    """Key/value pairs of one block; keys share prefixes with their predecessor."""
    if len(block) < 4:
        raise BundleError("block too short")
    restarts = struct.unpack_from("<I", block, len(block) - 4)[0]
    limit = len(block) - 4 - 4 * restarts
    if limit < 0:
        raise BundleError("bad restart count")
    entries: list[tuple[bytes, bytes]] = []
    key = b""
    pos = 0
    while pos < limit:
        shared, pos = _varint(block, pos)
        unshared, pos = _varint(block, pos)
        value_length, pos = _varint(block, pos)
        key = key[:shared] + block[pos : pos + unshared]
        pos += unshared
        entries.append((key, block[pos : pos + value_length]))
        pos += value_length
    return entries


def read_index(index_path: Path) -> dict[str, Entry]:
    """Every tensor entry of a bundle's `.index` (the header, under the empty key, is skipped)."""
    table = index_path.read_bytes()
    if len(table) < FOOTER_SIZE:
        raise BundleError(f"{index_path} is too short to be a tensor bundle index")
    footer = table[-FOOTER_SIZE:]
    if int.from_bytes(footer[-8:], "little") != TABLE_MAGIC:
        raise BundleError(f"{index_path} is not an SSTable (bad magic number)")
    _, after_metaindex = _block(table, footer)  # the metaindex block is unused
    index_block, _ = _block(table, footer, after_metaindex)
    entries: dict[str, Entry] = {}
    for _, handle in _block_entries(index_block):
        data_block, _ = _block(table, handle)
        for key, value in _block_entries(data_block):
            if key:
                entries[key.decode()] = parse_entry(value)
    return entries


def read_bundle(directory: Path, name: str = "") -> dict[str, npt.NDArray[np.generic]]:
    """All tensors of the bundle `name` in `directory` (musicnn's bundles have an empty name:
    `.index` and `.data-00000-of-00001`). Single-shard bundles only."""
    entries = read_index(directory / f"{name}.index")
    data = (directory / f"{name}{DATA_SHARD}").read_bytes()
    tensors: dict[str, npt.NDArray[np.generic]] = {}
    for variable, entry in entries.items():
        if entry.shard_id != 0:
            raise BundleError(f"{variable}: multi-shard bundles are not supported")
        dtype = DTYPES.get(entry.dtype)
        if dtype is None:
            raise BundleError(f"{variable}: unsupported dtype {entry.dtype}")
        count = int(np.prod(entry.shape, dtype=np.int64))
        if entry.offset + entry.size > len(data) or count * np.dtype(dtype).itemsize != entry.size:
            raise BundleError(f"{variable}: entry does not fit the data shard")
        raw = np.frombuffer(data, dtype=dtype, count=count, offset=entry.offset)
        tensors[variable] = raw.reshape(entry.shape).copy()
    return tensors
