"""Which pages show the same page: text MinHash/LSH and a perceptual image hash.

Why it is shaped this way:
- A trove holds the same page more than once: printed and scanned again, cropped, at
  another resolution, from another source. Comparing every pair of 100,000 pages is
  5 billion comparisons, so candidates come from locality-sensitive hashing: MinHash
  over word pairs of the normalised text (datasketch's MinHashLSH), and bands of a
  256-bit perceptual hash of the page image (imagehash's DCT hash, computed by
  workbench.perceptual) for pages with
  little or no text. Only candidates are compared exactly.
- A candidate pair is the same page when the normalised texts are 80% alike character
  by character (rapidfuzz's Indel ratio: OCR noise costs a few characters; a different
  cable on the same template stays below 70% on the fixture troves), or, when one of
  them has too little text or text OCR was unsure of (mean confidence under 60), when
  the two images are within 12 of 256 hash bits (a photo whose OCR text is noise).
- Each page's signature (MinHash and image hash) is computed once and kept in
  ``page_signatures`` with the hash of what it was computed from; a re-OCR'd page gets
  a new one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from workbench import perceptual
from workbench.analysis import normalize
from workbench.store import Case

NUM_PERM = 64
SHINGLE = 2  # word pairs: an OCR error breaks two, so a noisy copy still shares most
MIN_WORDS = 20  # fewer words than this: the text cannot tell two pages apart
TRUSTED_OCR = 60  # OCR mean word confidence below which its text cannot decide
LSH_THRESHOLD = 0.5  # Jaccard of word pairs LSH aims at (weighted against false positives)
CANDIDATE_JACCARD = 0.45  # estimated Jaccard a candidate must reach to be compared
MAX_IMAGE_BUCKET = 200  # pages sharing one image-hash band value beyond this say nothing
TEXT_THRESHOLD = 0.8  # character similarity of the normalised texts for "the same page"
HASH_SIZE = perceptual.HASH_SIZE  # 16 x 16 = 256-bit image hash
IMAGE_BANDS = 16  # 16 bands of 16 bits for image candidates
IMAGE_SAME = 12  # of 256 bits: the pages look the same whatever their (OCR) text says
IMAGE_SIDE = perceptual.IMAGE_SIDE  # pixels on the longer side the hash is computed from


@dataclass
class Signature:
    page_id: str
    page_row: int
    basis: str  # SHA-256 of what it was computed from (page fingerprint and text)
    source_id: int
    text_source: str
    words: int
    confidence: float | None  # OCR's mean word confidence, None for a text layer

    @property
    def text_decides(self) -> bool:
        """Enough text, read well enough, to say alone whether two pages are the same."""
        if self.words < MIN_WORDS:
            return False
        return self.text_source != "ocr" or (self.confidence or 0) >= TRUSTED_OCR

    minhash: Any | None  # datasketch.LeanMinHash
    image_hash: int | None  # 256 bits


@dataclass(frozen=True)
class Pair:
    """Two pages that show the same page, and how alike they are."""

    first: str
    second: str
    text_similarity: float | None
    image_distance: int | None

    def as_json(self) -> dict[str, Any]:
        return {
            "pages": [self.first, self.second],
            "text_similarity": None
            if self.text_similarity is None
            else round(self.text_similarity, 3),
            "image_distance": self.image_distance,
        }


def shingles(text: str) -> set[str]:
    words = normalize(text).split()
    if len(words) < SHINGLE:
        return {" ".join(words)} if words else set()
    return {" ".join(words[i : i + SHINGLE]) for i in range(len(words) - SHINGLE + 1)}


def _minhash(grams: set[str]) -> Any:
    from datasketch import LeanMinHash, MinHash

    found = MinHash(num_perm=NUM_PERM, seed=1)
    found.update_batch([g.encode("utf-8") for g in grams])
    return LeanMinHash(found)


def image_hash(image: Any) -> int:
    """A 256-bit perceptual hash of a page image (any size; grey is enough): imagehash's
    DCT hash, computed by workbench.perceptual (the same values, cheaper)."""
    from workbench import perceptual

    return perceptual.image_hash(image)


def _basis(row: Any) -> str:
    """What a signature is computed from: the method, the page fingerprint, the text."""
    method = f"{SHINGLE}:{NUM_PERM}:{HASH_SIZE}:{IMAGE_SIDE}"
    return hashlib.sha256(f"{method}\n{row['page_sha256']}\n{row['text']}".encode()).hexdigest()


def signatures(case: Case, *, with_images: bool = True) -> list[Signature]:
    """Every page's signature, computing (and storing) the ones missing or out of date."""
    from datasketch import LeanMinHash

    stored = {
        row[0]: (row[1], row[2], row[3])
        for row in case.db.execute(
            "SELECT page_row, basis_sha256, image_hash, minhash FROM page_signatures"
        )
    }
    found: list[Signature] = []
    fresh: list[tuple[int, str, str | None, bytes | None]] = []
    for row in case.db.execute(
        "SELECT p.id, p.page_id, p.source_id, p.text_source, p.ocr_confidence, p.text,"
        " p.page_sha256, json_extract(p.metadata, '$.image_hash') AS ingested_image_hash,"
        " p.page_number, s.path, s.kind, s.sha256 AS source_sha256"
        " FROM pages p JOIN sources s ON s.id = p.source_id"
        " ORDER BY p.id"
    ):
        basis = _basis(row)
        grams = None
        words = len(row["text"].split())
        known = stored.get(row["id"])
        if known is not None and known[0] == basis:
            image_value = int(known[1], 16) if known[1] else None
            minhash = LeanMinHash.deserialize(known[2]) if known[2] else None
        else:
            grams = shingles(row["text"]) if words >= MIN_WORDS else set()
            minhash = _minhash(grams) if grams else None
            if row["ingested_image_hash"]:  # computed at ingest, in the worker
                image_value = int(row["ingested_image_hash"], 16)
            else:  # a page ingested before: drawn again from its (custody-checked) file
                image_value = _page_image_hash(row) if with_images else None
            fresh.append(
                (
                    row["id"],
                    basis,
                    None if image_value is None else f"{image_value:064x}",
                    _serialize(minhash),
                )
            )
        found.append(
            Signature(
                page_id=row["page_id"],
                page_row=row["id"],
                basis=basis,
                source_id=row["source_id"],
                text_source=row["text_source"],
                words=words,
                confidence=row["ocr_confidence"],
                minhash=minhash,
                image_hash=image_value,
            )
        )
    if fresh:
        with case.transaction() as db:
            db.executemany(
                "INSERT INTO page_signatures(page_row, basis_sha256, image_hash, minhash)"
                " VALUES (?,?,?,?) ON CONFLICT(page_row) DO UPDATE SET"
                " basis_sha256 = excluded.basis_sha256, image_hash = excluded.image_hash,"
                " minhash = excluded.minhash",
                fresh,
            )
    return found


def _serialize(minhash: Any | None) -> bytes | None:
    if minhash is None:
        return None
    buffer = bytearray(minhash.bytesize())
    minhash.serialize(buffer)
    return bytes(buffer)


def _page_image_hash(row: Any) -> int | None:
    """Rendered from the file; None when the file is gone, changed or unreadable."""
    from workbench import readers
    from workbench.errors import WorkbenchError

    try:
        readers.check_custody(row["path"], row["source_sha256"])
        image = readers.render_page_image(
            row["path"], row["kind"] or "pdf", row["page_number"], max_side=IMAGE_SIDE
        )
    except (WorkbenchError, OSError, ValueError, RuntimeError):
        return None
    return image_hash(image)


def candidate_pairs(found: list[Signature]) -> Iterator[tuple[Signature, Signature]]:
    """Pairs of pages that may show the same page (each pair once, in page order).

    Text: LSH candidates whose estimated Jaccard similarity (from the MinHashes) reaches
    CANDIDATE_JACCARD; office documents written from templates share many word pairs, so
    LSH alone would hand over a large share of all pairs. Images: pages sharing a band of
    their image hash, only where one of the two has text that cannot decide, and never
    from a band value so common that it says nothing (a blank page's).
    """
    from datasketch import MinHashLSH

    seen: set[tuple[int, int]] = set()
    lsh = MinHashLSH(threshold=LSH_THRESHOLD, num_perm=NUM_PERM, weights=(0.7, 0.3))
    by_row = {s.page_row: s for s in found}
    for signature in found:
        if signature.minhash is not None:
            lsh.insert(signature.page_row, signature.minhash)
    for signature in found:
        if signature.minhash is None:
            continue
        for other in lsh.query(signature.minhash):
            key = (min(signature.page_row, other), max(signature.page_row, other))
            if other == signature.page_row or key in seen:
                continue
            seen.add(key)
            if signature.minhash.jaccard(by_row[other].minhash) >= CANDIDATE_JACCARD:
                yield by_row[key[0]], by_row[key[1]]
    buckets: dict[tuple[int, int], list[Signature]] = {}
    band_bits = (HASH_SIZE * HASH_SIZE) // IMAGE_BANDS
    mask = (1 << band_bits) - 1
    for signature in found:
        if signature.image_hash is None:
            continue
        for band in range(IMAGE_BANDS):
            value = (signature.image_hash >> (band * band_bits)) & mask
            buckets.setdefault((band, value), []).append(signature)
    for members in buckets.values():
        if len(members) > MAX_IMAGE_BUCKET:
            continue
        for i, first in enumerate(members):
            for second in members[i + 1 :]:
                if first.text_decides and second.text_decides:
                    continue  # the text pairs these two (or says they differ)
                key = (min(first.page_row, second.page_row), max(first.page_row, second.page_row))
                if key not in seen:
                    seen.add(key)
                    yield by_row[key[0]], by_row[key[1]]


_memo: dict[str, tuple[str, list[Pair], dict[str, str]]] = {}


def near_duplicates(case: Case, *, with_images: bool = True) -> tuple[list[Pair], dict[str, str]]:
    """Every pair of pages that show the same page, in page order, and each page's basis.

    Remembered for the case while no page changes, so the checks that need the pairs
    (near-duplicate, copy-difference) compute them once per run.
    """
    found = signatures(case, with_images=with_images)
    basis = {s.page_id: s.basis for s in found}
    state = hashlib.sha256("\n".join(s.basis for s in found).encode()).hexdigest()
    remembered = _memo.get(str(case.root))
    if remembered is not None and remembered[0] == state:
        return remembered[1], remembered[2]
    pairs = _pairs(case, found)
    _memo[str(case.root)] = (state, pairs, basis)
    return pairs, basis


def _pairs(case: Case, found: list[Signature]) -> list[Pair]:
    from rapidfuzz import fuzz

    texts: dict[int, str] = {}

    def text(signature: Signature) -> str:
        if signature.page_row not in texts:
            row = case.db.execute(
                "SELECT text FROM pages WHERE id = ?", (signature.page_row,)
            ).fetchone()
            texts[signature.page_row] = normalize(row[0])
        return texts[signature.page_row]

    pairs = []
    for first, second in candidate_pairs(found):
        distance = None
        if first.image_hash is not None and second.image_hash is not None:
            distance = (first.image_hash ^ second.image_hash).bit_count()
        similarity = None
        if first.words >= MIN_WORDS and second.words >= MIN_WORDS:
            similarity = fuzz.ratio(text(first), text(second)) / 100
        by_text = similarity is not None and similarity >= TEXT_THRESHOLD
        # the image decides only where the text cannot: too little of it, or OCR unsure
        # (pages of text look alike at 256 pixels; two well-read texts are compared)
        by_image = (
            distance is not None
            and distance <= IMAGE_SAME
            and not (first.text_decides and second.text_decides)
        )
        if by_text or by_image:
            pairs.append(Pair(first.page_id, second.page_id, similarity, distance))
    return sorted(pairs, key=lambda p: (p.first, p.second))


def clusters(pairs: Iterable[Pair]) -> list[list[str]]:
    """Groups of pages linked by pairs (union-find), each sorted, in page order."""
    parent: dict[str, str] = {}

    def root(page: str) -> str:
        while parent.setdefault(page, page) != page:
            parent[page] = parent[parent[page]]
            page = parent[page]
        return page

    for pair in pairs:
        first, second = root(pair.first), root(pair.second)
        if first != second:
            parent[max(first, second)] = min(first, second)
    groups: dict[str, list[str]] = {}
    for page in parent:
        groups.setdefault(root(page), []).append(page)
    return sorted(sorted(group) for group in groups.values() if len(group) > 1)
