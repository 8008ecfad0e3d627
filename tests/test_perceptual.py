"""The perceptual page hash (workbench.perceptual) is exactly imagehash's DCT hash.

The near-duplicate check compares hashes stored by earlier ingests with new ones, so the
cheaper computation must give the same bits: on real pages (rendered as the ingest
renders them), scans, images of one colour (blank pages), symmetric drawings whose
coefficients tie, and noise.
"""

from __future__ import annotations

from pathlib import Path

import imagehash
import numpy as np
import pymupdf
import pytest
from PIL import Image, ImageDraw

from tests.conftest import CORPUS, needs_corpus
from workbench import perceptual, readers


def reference(image: Image.Image) -> int:
    """What workbench computed before: imagehash.phash on the grey thumbnail."""
    image = image.convert("L")
    image.thumbnail((perceptual.IMAGE_SIDE, perceptual.IMAGE_SIDE))
    bits = imagehash.phash(image, hash_size=perceptual.HASH_SIZE).hash.flatten()
    value = 0
    for bit in bits:
        value = (value << 1) | int(bit)
    return value


def test_one_colour_images_hash_as_imagehash_does() -> None:
    for level in range(256):
        image = Image.new("L", (181, 256), level)
        assert perceptual.image_hash(image) == reference(image), level


def test_symmetric_and_drawn_images_hash_as_imagehash_does() -> None:
    images = []
    for size in ((256, 256), (181, 256), (256, 40), (7, 9)):
        for box in ((0, 0, 10, 10), (20, 20, 60, 60), (0, 100, 256, 110)):
            image = Image.new("L", size, 255)
            ImageDraw.Draw(image).rectangle(box, fill=0)
            images.append(image)
        image = Image.new("L", size, 255)
        draw = ImageDraw.Draw(image)
        draw.line((0, size[1] // 2, size[0], size[1] // 2), fill=0, width=3)  # mirror-symmetric
        images.append(image)
        gradient = np.tile(np.arange(size[0], dtype=np.uint8), (size[1], 1))
        images.append(Image.fromarray(gradient, "L"))
    rgb = Image.new("RGB", (600, 800), (250, 240, 230))  # larger than the side, in colour
    ImageDraw.Draw(rgb).ellipse((100, 100, 500, 700), fill=(10, 20, 30))
    images.append(rgb)
    for image in images:
        assert perceptual.image_hash(image) == reference(image)


def test_noise_hashes_as_imagehash_does() -> None:
    rng = np.random.default_rng(15)
    for _ in range(200):
        pixels = rng.integers(0, 256, (256, 200), dtype=np.uint8)
        image = Image.fromarray(pixels, "L")
        assert perceptual.image_hash(image) == reference(image)


def _rendered_pages(paths: list[Path]) -> list[Image.Image]:
    images = []
    for path in paths:
        try:
            doc = pymupdf.open(path)
        except Exception:  # noqa: BLE001 - a corpus file MuPDF refuses is not a page
            continue
        with doc:
            if doc.needs_pass:
                continue
            for page in doc:
                pixmap = readers.render_page(page, gray=True, max_side=readers.VISUAL_HASH_SIDE)
                images.append(readers._pixmap_image(pixmap))
    return images


def test_fixture_pages_hash_as_imagehash_does(small_trove: Path) -> None:
    images = _rendered_pages(sorted(small_trove.rglob("*.pdf")))
    assert len(images) >= 10
    for image in images:
        assert perceptual.reduced_hash(image) == reference(image)


@needs_corpus
@pytest.mark.parametrize("folder", ["born_digital", "scans", "safety"])
def test_corpus_pages_hash_as_imagehash_does(folder: str) -> None:
    images = _rendered_pages(sorted((CORPUS / folder).glob("*.pdf")))
    for path in sorted((CORPUS / folder).iterdir()):
        if path.suffix.lower() in (".png", ".jpg", ".jpeg", ".tif", ".tiff"):
            with Image.open(path) as image:
                images.append(image.convert("L"))
    assert images
    for image in images:
        assert perceptual.image_hash(image) == reference(image)
