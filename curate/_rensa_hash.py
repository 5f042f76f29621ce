"""rensa's 64-bit token hash in numpy, over byte spans of one buffer (no object per token).

A copy of rensa's ``calculate_hash_fast`` (``RMinHash.ALGORITHM_VERSION`` 2): the hash rensa
gives a ``str`` token's UTF-8 bytes before its permutations. Hashing spans here and handing the
hashes to ``RMinHash.digest_matrix_from_flat_token_hashes`` gives the signatures rensa computes
from the strings (``tests/curate/test_curate_fast_sketch.py`` checks it against
``RMinHash.hash_token_sets`` at every length).
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import as_strided

RENSA_HASH_VERSION = 2
PAD = 16  # bytes a buffer needs after its last span
_SLICE = 16_384
_M32 = np.uint64(0xFFFFFFFF)
_S32 = np.uint64(32)
_SEED1 = np.uint64(0x243F6A8885A308D3)
_SEED2 = np.uint64(0x13198A2E03707344)
_ZERO_GUARD = np.uint64(0xA4093822299F31D0)
_K = np.uint64(0xF1357AEA2E62A9C5)


def _mix(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The low and high halves of the 128-bit product ``x * y``, xor-ed (rensa's multiply_mix)."""
    x0, x1, y0, y1 = x & _M32, x >> _S32, y & _M32, y >> _S32
    p00, p01, p10 = x0 * y0, x0 * y1, x1 * y0
    mid = (p00 >> _S32) + (p01 & _M32) + (p10 & _M32)
    high = x1 * y1 + (p01 >> _S32) + (p10 >> _S32) + (mid >> _S32)
    return (x * y) ^ high


def _u64_at(buf: np.ndarray) -> np.ndarray:
    """A uint64 view of ``buf`` at every byte offset (unaligned, little-endian, no copy)."""
    whole = np.frombuffer(buf, dtype="<u8", count=len(buf) // 8)
    return as_strided(whole, shape=(len(buf) - 8,), strides=(1,), writeable=False)


def token_hashes(buf: np.ndarray, start: np.ndarray, length: np.ndarray) -> np.ndarray:
    """rensa's 64-bit hash of each byte span ``buf[start:start + length]`` (``buf`` is uint8 with
    at least ``PAD`` bytes after the last span)."""
    u64 = _u64_at(buf)
    # in slices whose temporaries stay in the CPU's cache
    pieces = [
        _hashes(buf, u64, start[k : k + _SLICE], length[k : k + _SLICE])
        for k in range(0, len(start), _SLICE)
    ]
    return np.concatenate(pieces) if pieces else np.zeros(0, np.uint64)


def _hashes(buf, u64, start, length) -> np.ndarray:
    with np.errstate(over="ignore"):
        s0, s1 = np.full(len(start), _SEED1), np.full(len(start), _SEED2)
        i = np.flatnonzero((length >= 8) & (length <= 16))
        s0[i] ^= u64[start[i]]
        s1[i] ^= u64[start[i] + length[i] - 8]
        i = np.flatnonzero((length >= 4) & (length < 8))
        s0[i] ^= u64[start[i]] & _M32
        s1[i] ^= u64[start[i] + length[i] - 4] & _M32
        i = np.flatnonzero((length > 0) & (length < 4))
        s0[i] ^= buf[start[i]].astype(np.uint64)
        last, mid = buf[start[i] + length[i] - 1], buf[start[i] + length[i] // 2]
        s1[i] ^= (last.astype(np.uint64) << np.uint64(8)) | mid
        i = np.flatnonzero(length > 16)
        s0[i], s1[i] = _long_spans(u64, start[i], length[i], s0[i], s1[i])
        h = (_mix(s0, s1) ^ length.astype(np.uint64)) * _K
        return (h << np.uint64(26)) | (h >> np.uint64(38))


def _long_spans(u64, start, length, s0, s1) -> tuple[np.ndarray, np.ndarray]:
    """Spans over 16 bytes: 16-byte blocks folded in, then the last 16 bytes."""
    block = 0
    while len(on := np.flatnonzero(16 * block < length - 16)):
        at = start[on] + 16 * block
        t = _mix(s0[on] ^ u64[at], _ZERO_GUARD ^ u64[at + 8])
        s0[on], s1[on] = s1[on], t
        block += 1
    return s0 ^ u64[start + length - 16], s1 ^ u64[start + length - 8]
