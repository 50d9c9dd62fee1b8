"""Data augmentation of training mini-batches: random shifts and left-right flips.

One random shift ``(dy, dx)`` per mini-batch, the same for all its images (cheap; each image
still sees a new shift every epoch), with zero fill; with ``flip``, each image is first
mirrored left-right with probability 1/2. The draws come from the network's training stream
(data order and augmentation), so a resumed run repeats them exactly.
"""

from __future__ import annotations

import math

from . import backend


def image_hw(in_shape) -> tuple[int, int]:
    """Height and width of the images: ``(C, H, W)`` inputs, or flat inputs read as square images."""
    if len(in_shape) == 3:
        return tuple(in_shape[1:])
    side = int(round(math.sqrt(in_shape[0])))
    if side * side != in_shape[0]:
        raise ValueError("augment needs image inputs: (C, H, W) or a square number of pixels")
    return (side, side)


def augment(xb, rng, in_shape, shift: int = 0, flip: bool = False):
    """The mini-batch ``xb`` shifted by up to ``shift`` pixels and, with ``flip``, mirrored.

    ``rng`` is a NumPy ``Generator`` (host); ``xb`` keeps its shape and backend.
    """
    if not (shift or flip):
        return xb
    xp = backend.xp()
    shape = xb.shape
    img = xb.reshape(shape[0], -1, *image_hw(in_shape))
    if flip:
        mirror = backend.asarray(rng.random(shape[0]) < 0.5, dtype=bool).reshape(-1, 1, 1, 1)
        img = xp.where(mirror, img[:, :, :, ::-1], img)
    if not shift:
        return img.reshape(shape)
    dy, dx = (int(v) for v in rng.integers(-shift, shift + 1, size=2))
    img = xp.roll(img, (dy, dx), axis=(2, 3))
    if dy > 0:
        img[:, :, :dy] = 0
    elif dy < 0:
        img[:, :, dy:] = 0
    if dx > 0:
        img[:, :, :, :dx] = 0
    elif dx < 0:
        img[:, :, :, dx:] = 0
    return img.reshape(shape)
