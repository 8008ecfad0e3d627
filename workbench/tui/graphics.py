"""How the terminal can draw a page image: Kitty graphics, Sixel, or half blocks.

Why it is shaped this way:
- Kitty's graphics protocol and Sixel show the page at full resolution; text cells
  ('▀' half blocks, two pixels per cell) work everywhere, tmux included.
- Asking the terminal what it supports means writing an escape sequence and reading the
  reply from stdin, which only works BEFORE Textual starts reading stdin: so
  :func:`choose` runs in ``run_app`` before the app starts, never inside it.
- Terminal multiplexers (tmux, screen) pass graphics through unreliably and their
  ``capture-pane`` shows nothing of them, so inside one the default is half blocks;
  ``--graphics`` or ``WORKBENCH_GRAPHICS`` overrides any guess.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping

from workbench.errors import UsageError

MODES = ("auto", "kitty", "sixel", "halfblock")
ENV_VARIABLE = "WORKBENCH_GRAPHICS"


def requested_mode(option: str | None, env: Mapping[str, str] = os.environ) -> str:
    """The mode asked for: the command-line option, else the environment, else auto."""
    mode = (option or env.get(ENV_VARIABLE) or "auto").strip().lower()
    if mode not in MODES:
        raise UsageError(
            f"unknown graphics mode {mode!r} (from --graphics or {ENV_VARIABLE}); "
            f"use one of: {', '.join(MODES)}"
        )
    return mode


def in_multiplexer(env: Mapping[str, str] = os.environ) -> bool:
    """True inside tmux or GNU screen."""
    return bool(env.get("TMUX")) or env.get("TERM", "").startswith(("screen", "tmux"))


def choose(option: str | None = None, env: Mapping[str, str] = os.environ) -> str:
    """The mode to draw page images with; may query the terminal (call before the app runs)."""
    mode = requested_mode(option, env)
    if mode != "auto":
        return mode
    stdout = sys.__stdout__
    if stdout is None or not stdout.isatty() or in_multiplexer(env):
        return "halfblock"
    if env.get("TERM") == "xterm-kitty" or env.get("KITTY_WINDOW_ID"):
        return "kitty"
    try:
        # Importing it asks the terminal (Sixel first, then Kitty), replies read from stdin.
        from textual_image import renderable
    except Exception:  # noqa: BLE001 - a terminal that answers oddly just gets half blocks
        return "halfblock"
    if renderable.Image is renderable.SixelImage:
        return "sixel"
    if renderable.Image is renderable.TGPImage:
        return "kitty"
    return "halfblock"


def image_widget_class(mode: str):
    """The Textual widget class drawing images in ``mode`` (None: the half-block Static)."""
    if mode == "halfblock":
        return None
    # Imported only here: it measures the terminal's cell size on import.
    from textual_image.widget import SixelImage, TGPImage

    return {"kitty": TGPImage, "sixel": SixelImage}[mode]


def cell_pixels() -> tuple[int, int]:
    """(width, height) of one terminal cell in pixels, as the image widgets measure it."""
    from textual_image._terminal import get_cell_size

    size = get_cell_size()
    return size.width, size.height
