"""The perceptual page hash of the near-duplicate check: imagehash's DCT hash, made cheap.

Why it is shaped this way:
- Every page of an ingest gets this hash in the worker that reads it, so its cost is paid
  per page: ``imagehash.phash`` copied the image three times, ran two full 64 x 64 DCTs
  through SciPy (whose import alone took about 0.2 s in each worker) and built the integer
  bit by bit. Here the same 64 x 64 LANCZOS reduction is multiplied by the first 16 rows
  of the DCT-II matrix (only the 16 x 16 low frequencies are kept), in NumPy.
- The hash must stay exactly imagehash's (``phash(image, hash_size=16)``): the values
  are stored in every case and compared across ingests. A bit is "coefficient above the
  median of the 256", so two ways of computing the DCT can disagree only where a
  coefficient lies within rounding error (about 1e-7 at most for 8-bit pixels) of the
  median. Where any lies within MARGIN of it, the hash is computed the old way (SciPy's
  DCT, imported then); an image of one uniform colour has the answer SciPy gives
  exactly (only the DC coefficient is non-zero). tests/test_perceptual.py compares the
  two on real pages, scans, synthetic and random images.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image

HASH_SIZE = 16  # 16 x 16 = 256-bit image hash
IMAGE_SIDE = 256  # pixels on the longer side the image hash is computed from
_REDUCED = HASH_SIZE * 4  # imagehash's highfreq_factor 4: a 64 x 64 image is transformed
# Far above the rounding error of either DCT (about 1e-7 for 8-bit pixels), far below
# the distance of real coefficients from their median.
MARGIN = 1e-3

_n = np.arange(_REDUCED)
# scipy.fftpack.dct type II, unnormalised: y[k] = 2 sum_n x[n] cos(pi k (2n + 1) / 2N)
_DCT_ROWS = 2.0 * np.cos(np.pi * np.outer(np.arange(HASH_SIZE), 2 * _n + 1) / (2 * _REDUCED))
del _n


def image_hash(image: Image.Image) -> int:
    """A 256-bit perceptual hash of a page image (any size and mode; grey is enough).

    Equal to ``imagehash.phash(image.convert("L") thumbnailed to IMAGE_SIDE, 16)`` read
    as a big-endian integer of its bits.
    """
    if image.width > IMAGE_SIDE or image.height > IMAGE_SIDE:
        image = image.convert("L") if image.mode != "L" else image.copy()
        image.thumbnail((IMAGE_SIDE, IMAGE_SIDE))  # in place: on our copy
    elif image.mode != "L":
        image = image.convert("L")
    return reduced_hash(image)


def reduced_hash(image: Image.Image) -> int:
    """The hash of a grey ("L") image already no larger than IMAGE_SIDE on either side."""
    reduced = image.resize((_REDUCED, _REDUCED), Image.Resampling.LANCZOS)
    pixels = np.asarray(reduced, dtype=np.float64)
    low = _DCT_ROWS @ pixels @ _DCT_ROWS.T
    median = np.median(low)
    if np.abs(low - median).min() <= MARGIN:
        if pixels.min() == pixels.max():  # one colour: SciPy gives DC alone, others 0.0
            return 1 << (HASH_SIZE * HASH_SIZE - 1) if pixels[0, 0] > 0 else 0
        return _bits_value(_scipy_low_frequencies(reduced))
    return _bits_value(low > median)


def _scipy_low_frequencies(reduced: Image.Image) -> Any:
    """imagehash's own computation, for the rare image whose bits rounding could flip."""
    import scipy.fftpack

    pixels = np.asarray(reduced)
    dct = scipy.fftpack.dct(scipy.fftpack.dct(pixels, axis=0), axis=1)
    low = dct[:HASH_SIZE, :HASH_SIZE]
    return low > np.median(low)


def _bits_value(bits: Any) -> int:
    """The bits, first one most significant, as an integer."""
    return int.from_bytes(np.packbits(bits.ravel()).tobytes(), "big")
