"""Choosing how page images are drawn: option, environment, multiplexer, terminal."""

from __future__ import annotations

import pytest

from workbench.errors import UsageError
from workbench.tui import graphics


def test_option_beats_environment_beats_auto() -> None:
    env = {"WORKBENCH_GRAPHICS": "sixel"}
    assert graphics.requested_mode("kitty", env) == "kitty"
    assert graphics.requested_mode(None, env) == "sixel"
    assert graphics.requested_mode(None, {}) == "auto"
    assert graphics.choose("halfblock", {"TERM": "xterm-kitty"}) == "halfblock"


def test_unknown_mode_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="WORKBENCH_GRAPHICS"):
        graphics.requested_mode(None, {"WORKBENCH_GRAPHICS": "ascii-art"})


def test_auto_without_a_terminal_or_inside_tmux_uses_half_blocks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Under pytest stdout is not a terminal: nothing may be asked of it.
    assert graphics.choose(None, {"TERM": "xterm-kitty"}) == "halfblock"

    class FakeTty:
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr("sys.__stdout__", FakeTty())
    assert graphics.choose(None, {"TMUX": "/tmp/tmux-0/default,1,0", "TERM": "xterm"}) == (
        "halfblock"
    )
    assert graphics.choose(None, {"TERM": "screen-256color"}) == "halfblock"
    assert graphics.choose(None, {"TERM": "xterm-kitty"}) == "kitty"
    assert graphics.choose(None, {"KITTY_WINDOW_ID": "1", "TERM": "xterm"}) == "kitty"


def test_widgets_for_each_mode() -> None:
    assert graphics.image_widget_class("halfblock") is None
    assert graphics.image_widget_class("sixel").__name__ == "Image"
    assert graphics.image_widget_class("kitty").__name__ == "TGPImage"
