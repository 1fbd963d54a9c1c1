"""Reader for the IDX format of MNIST and Fashion-MNIST (http://yann.lecun.com/exdb/mnist/).

An IDX file is a header, magic ``00 00 <type> <ndim>`` then ``ndim`` big-endian uint32 sizes, followed
by the data in row-major order. Only type 0x08 (unsigned byte) is used by these datasets.
"""

from __future__ import annotations

import gzip
import math
import struct
import zlib
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import Tensor

UNSIGNED_BYTE = 0x08
GZIP_MAGIC = b"\x1f\x8b"


def read_bytes(path: Path) -> bytes:
    """The file's content, decompressed when it starts with the gzip magic; ValueError if the gzip is bad."""
    raw = path.read_bytes()
    if not raw.startswith(GZIP_MAGIC):
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as error:
        raise ValueError(
            f"{path} is a corrupt or truncated gzip file ({error}); delete it and download it again"
        ) from error


def parse_idx(data: bytes, source: str, expected_shape: Sequence[int | None] | None = None) -> Tensor:
    """Parses IDX bytes into a uint8 tensor, checking magic, dimensions and length.

    ``expected_shape`` lists the sizes to require, ``None`` for any size (e.g. ``[None, 28, 28]``).
    ``source`` names the file in error messages.
    """
    advice = "delete it and download it again (python scripts/download_mnist.py)"
    if len(data) < 4 or data[0:2] != b"\x00\x00":
        magic = data[:4].hex() or "empty"
        raise ValueError(f"{source} is not an IDX file (bad magic number {magic}); {advice}")
    type_code, ndim = data[2], data[3]
    if type_code != UNSIGNED_BYTE:
        raise ValueError(f"{source} holds IDX type 0x{type_code:02x}, expected 0x08 (uint8); {advice}")
    header_length = 4 + 4 * ndim
    if ndim == 0 or len(data) < header_length:
        raise ValueError(f"{source} has a truncated IDX header ({len(data)} bytes, {ndim} dims); {advice}")
    shape = list(struct.unpack(f">{ndim}I", data[4:header_length]))
    if expected_shape is not None:
        expected = list(expected_shape)
        matches = len(shape) == len(expected) and all(
            e is None or e == s for e, s in zip(expected, shape, strict=True)
        )
        if not matches:
            wanted = "[" + ", ".join("N" if e is None else str(e) for e in expected) + "]"
            raise ValueError(f"{source} holds an array of shape {shape}, expected {wanted}; {advice}")
    count = math.prod(shape)
    if len(data) - header_length != count:
        raise ValueError(
            f"{source} is truncated or corrupt: header promises {count} bytes of data for shape {shape}, "
            f"found {len(data) - header_length}; {advice}"
        )
    # frombuffer shares memory with the (writable) bytearray: one uint8 copy of the data, no more.
    return torch.frombuffer(bytearray(data), dtype=torch.uint8, offset=header_length).reshape(shape)


def read_idx(path: str | Path, expected_shape: Sequence[int | None] | None = None) -> Tensor:
    """Reads an IDX file (plain or gzip) into a uint8 tensor; ValueError naming the file if it is bad."""
    path = Path(path)
    return parse_idx(read_bytes(path), str(path), expected_shape)
