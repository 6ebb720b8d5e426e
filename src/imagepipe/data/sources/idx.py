"""The IDX format of MNIST and Fashion-MNIST: a magic number, dimension sizes, then raw bytes."""

import numpy as np

from imagepipe.core.errors import StageError

UNSIGNED_BYTE = 0x08


class IdxFormatError(StageError):
    """The bytes are not a complete IDX file of unsigned bytes."""


def parse_idx(payload: bytes, name: str) -> np.ndarray:
    """The array stored in an IDX file of unsigned bytes (labels or images)."""
    if len(payload) < 4 or payload[:2] != b"\x00\x00" or payload[2] != UNSIGNED_BYTE:
        raise IdxFormatError(f"{name}: not an IDX file of unsigned bytes (header {payload[:4].hex()})")
    num_dims = payload[3]
    header_size = 4 + 4 * num_dims
    if len(payload) < header_size:
        raise IdxFormatError(f"{name}: truncated IDX header ({len(payload)} bytes)")
    shape = tuple(int(size) for size in np.frombuffer(payload, ">u4", num_dims, offset=4))
    expected = int(np.prod(shape))
    found = len(payload) - header_size
    if found != expected:
        state = "truncated" if found < expected else "has trailing data"
        raise IdxFormatError(
            f"{name}: IDX file {state}: header says shape {shape} ({expected} bytes), found {found} bytes"
        )
    return np.frombuffer(payload, np.uint8, offset=header_size).reshape(shape)


def encode_idx(array: np.ndarray) -> bytes:
    """IDX bytes of a uint8 array; used to build local mirrors (tests, air-gapped hosts)."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = bytes([0, 0, UNSIGNED_BYTE, array.ndim]) + np.asarray(array.shape, ">u4").tobytes()
    return header + array.tobytes()
