"""Pure rendering helpers (no Textual): bidi display with offset mapping, half-block images.

Terminals do no bidi, so Persian/Arabic lines are reordered here, one line at a time. The
app keeps the logical text (what search offsets point into) and maps each visual cell back
to its logical offset, so a search hit is highlighted on the right characters.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable

from bidi import algorithm
from PIL import Image
from rich.color import Color
from rich.console import Console, ConsoleOptions, RenderResult
from rich.segment import Segment
from rich.style import Style
from rich.text import Text

_RTL = {"R", "AL"}


def has_rtl(line: str) -> bool:
    """True when the line holds right-to-left letters (only those need reordering)."""
    return any(unicodedata.bidirectional(ch) in _RTL for ch in line)


def base_is_rtl(line: str) -> bool:
    """True when the line's first strong character is right-to-left (its paragraph level)."""
    return algorithm.get_base_level(line, False) == 1


def visual_line(line: str) -> list[tuple[str, int]]:
    """(character, logical offset) pairs in display order for one line.

    Runs the same steps as ``bidi.algorithm.get_display`` but remembers where every
    character came from, so spans in logical text can be styled after reordering.
    """
    if not line or not has_rtl(line):
        return [(ch, i) for i, ch in enumerate(line)]
    storage = algorithm.get_empty_storage()
    base_level = algorithm.get_base_level(line, False)
    storage["base_level"] = base_level
    storage["base_dir"] = ("L", "R")[base_level]
    algorithm.get_embedding_levels(line, storage, False, False)
    for index, char in enumerate(storage["chars"]):
        char["idx"] = index
    algorithm.explicit_embed_and_overrides(storage, False)
    algorithm.resolve_weak_types(storage, False)
    algorithm.resolve_neutral_types(storage, False)
    algorithm.resolve_implicit_levels(storage, False)
    algorithm.reorder_resolved_levels(storage, False)
    algorithm.apply_mirroring(storage, False)
    return [(char["ch"], char["idx"]) for char in storage["chars"]]


def for_terminal(value: str) -> str:
    """A short single-line string (file name, metadata value) in display order."""
    return "".join(ch for ch, _ in visual_line(value)) if has_rtl(value) else value


def display_text(
    text: str,
    spans: Iterable[tuple[int, int]] = (),
    current: tuple[int, int] | None = None,
    *,
    span_style: str = "black on yellow",
    current_style: str = "bold black on bright_green",
) -> Text:
    """The page text for a terminal: each line bidi-reordered, logical spans highlighted."""
    spans = list(spans)
    out = Text(no_wrap=False, end="")
    offset = 0
    for number, line in enumerate(text.split("\n")):
        if number:
            out.append("\n")
        for ch, index in visual_line(line):
            position = offset + index
            style = ""
            if current and current[0] <= position < current[1]:
                style = current_style
            elif any(start <= position < end for start, end in spans):
                style = span_style
            out.append(ch, style)
        offset += len(line) + 1
    return out


def snippet_text(snippet: str, spans: Iterable[tuple[int, int]]) -> Text:
    """A search snippet on one line, matches styled (snippet spans are logical offsets)."""
    flat = snippet.replace("\n", " ")
    return display_text(flat, spans, span_style="bold black on yellow")


class HalfBlockImage:
    """A Rich renderable drawing an RGB image with '▀' cells: fg = upper, bg = lower pixel."""

    def __init__(self, image: Image.Image) -> None:
        self.image = image.convert("RGB")

    @classmethod
    def fit(cls, image: Image.Image, columns: int, rows: int) -> HalfBlockImage:
        """Shrink to fit ``columns`` x ``rows`` cells (two pixels per cell, top and bottom)."""
        thumb = image.convert("RGB")
        thumb.thumbnail((max(columns, 1), max(rows * 2, 2)), Image.Resampling.LANCZOS)
        return cls(thumb)

    @property
    def size(self) -> tuple[int, int]:
        """(columns, rows) this renderable occupies."""
        width, height = self.image.size
        return width, (height + 1) // 2

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        width, height = self.image.size
        pixels = self.image.load()
        for y in range(0, height, 2):
            for x in range(width):
                upper = pixels[x, y]
                lower = pixels[x, y + 1] if y + 1 < height else (0, 0, 0)
                style = Style(color=Color.from_rgb(*upper), bgcolor=Color.from_rgb(*lower))
                yield Segment("▀", style)
            yield Segment.line()
