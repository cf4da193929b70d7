"""MXNet ``.params`` files (the NDArray list format) read with numpy alone.

No ``mxnet`` wheel exists for current Pythons, so the format is parsed here: a header
(magic ``0x112``, reserved), the number of arrays, each array (an optional NDArray magic and
storage type, the shape, the context, the dtype flag, the raw little-endian data), then the
names (``arg:conv1_weight``, ``aux:bn1_moving_mean``, ...). Only dense arrays occur in model
files; anything else is refused with the reason.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

import numpy as np

from veilbench.errors import WeightsError

_LIST_MAGIC = 0x112
_V1_MAGIC = 0xF993FAC8  # shape dims as int64
_V2_MAGIC = 0xF993FAC9  # + storage type
_V3_MAGIC = 0xF993FACA  # numpy-shape semantics; same layout as V2 for dense arrays
#: MXNet's dtype flags (mshadow type_flag) -> numpy.
_DTYPES = {
    0: np.float32,
    1: np.float64,
    2: np.float16,
    3: np.uint8,
    4: np.int32,
    5: np.int8,
    6: np.int64,
}


class _Reader:
    def __init__(self, data: bytes, path: Path):
        self.data, self.pos, self.path = data, 0, path

    def take(self, fmt: str):
        size = struct.calcsize(fmt)
        if self.pos + size > len(self.data):
            raise WeightsError(f"{self.path} ends early (truncated .params file); fetch it again")
        values = struct.unpack_from("<" + fmt, self.data, self.pos)
        self.pos += size
        return values

    def array(self) -> np.ndarray:
        (magic,) = self.take("I")
        if magic in (_V2_MAGIC, _V3_MAGIC):
            (stype,) = self.take("i")
            if stype != 0:
                raise WeightsError(f"{self.path}: sparse arrays (storage {stype}) not supported")
        if magic in (_V1_MAGIC, _V2_MAGIC, _V3_MAGIC):
            (ndim,) = self.take("I")
            shape = self.take(f"{ndim}q")
        else:  # the oldest layout: no magic, the first word is ndim, dims as uint32
            ndim = magic
            shape = self.take(f"{ndim}I")
        if ndim == 0:
            return np.zeros((0,), np.float32)
        self.take("ii")  # context (device type, id): irrelevant on load
        (flag,) = self.take("i")
        if flag not in _DTYPES:
            raise WeightsError(f"{self.path}: unknown MXNet dtype flag {flag}")
        dtype = np.dtype(_DTYPES[flag]).newbyteorder("<")
        count = int(np.prod(shape))
        end = self.pos + count * dtype.itemsize
        if end > len(self.data):
            raise WeightsError(f"{self.path} ends early (truncated .params file); fetch it again")
        out = np.frombuffer(self.data, dtype, count, self.pos).reshape(shape).astype(dtype.type)
        self.pos = end
        return out


def read_params(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """``{"arg:name" or "aux:name": array}`` from an MXNet ``.params`` file."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise WeightsError(f"cannot read MXNet params {path}: {exc}") from exc
    r = _Reader(data, path)
    magic, _reserved = r.take("QQ")
    if magic != _LIST_MAGIC:
        raise WeightsError(f"{path} is not an MXNet .params file (magic {magic:#x})")
    (count,) = r.take("Q")
    arrays = [r.array() for _ in range(count)]
    (n_names,) = r.take("Q")
    names = []
    for _ in range(n_names):
        (length,) = r.take("Q")
        names.append(r.data[r.pos : r.pos + length].decode())
        r.pos += length
    if n_names != count or r.pos != len(data):
        raise WeightsError(
            f"{path}: {count} arrays, {n_names} names, {len(data) - r.pos} bytes left over; "
            "not a well-formed MXNet .params file"
        )
    return dict(zip(names, arrays, strict=True))
