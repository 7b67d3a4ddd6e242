"""Loading entity images safely and composing several into one picture.

Missing, corrupt or unreadable files raise :class:`ImageLoadError` with a short reason that the
captioner records and counts (the run goes on).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from PIL import Image, UnidentifiedImageError

__all__ = ["ImageLoadError", "load_image", "compose_side_by_side", "image_id"]

#: gap in pixels between composed images
_GAP = 8


class ImageLoadError(Exception):
    """An image could not be used; ``reason`` is "missing", "unreadable" or "empty"."""

    def __init__(self, path: str | Path, reason: str, detail: str = ""):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{reason} image {self.path}" + (f": {detail}" if detail else ""))


def image_id(path: str | Path) -> str:
    """Stable id of an image in cache keys: its file name."""
    return Path(path).name


def load_image(path: str | Path) -> Image.Image:
    """Open, fully decode and convert an image to RGB.

    :raises ImageLoadError: ``missing`` (no such file), ``unreadable`` (not an image, truncated or
        corrupt data, permission denied) or ``empty`` (zero-sized image)
    """
    path = Path(path)
    if not path.is_file():
        raise ImageLoadError(path, "missing")
    try:
        with Image.open(path) as handle:
            handle.load()
            image = handle.convert("RGB")
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as error:
        raise ImageLoadError(path, "unreadable", f"{type(error).__name__}: {error}") from None
    if image.width == 0 or image.height == 0:
        raise ImageLoadError(path, "empty")
    return image


def compose_side_by_side(images: Sequence[Image.Image], *, height: int = 384) -> Image.Image:
    """Scale images to ``height`` (keeping aspect) and place them left to right on white.

    :param images: one or more RGB images
    :returns: one RGB image ``height`` pixels high
    """
    if not images:
        raise ValueError("compose_side_by_side needs at least one image")
    if len(images) == 1:
        return images[0]
    scaled = [
        im.resize((max(1, round(im.width * height / im.height)), height), Image.Resampling.BICUBIC)
        for im in images
    ]
    width = sum(im.width for im in scaled) + _GAP * (len(scaled) - 1)
    canvas = Image.new("RGB", (width, height), (255, 255, 255))
    x = 0
    for im in scaled:
        canvas.paste(im, (x, 0))
        x += im.width + _GAP
    return canvas
