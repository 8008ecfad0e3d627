"""The README cannot drift from the CLI: every command and option is documented."""

from __future__ import annotations

from tests.conftest import REPO
from workbench.cli import main


def test_every_command_and_option_is_in_the_readme() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    missing = []
    for name, command in main.commands.items():
        if f"workbench {name}" not in readme and f"`{name}" not in readme:
            missing.append(f"command {name}")
        for param in command.params:
            for option in getattr(param, "opts", []):
                if option.startswith("--") and option not in readme:
                    missing.append(f"{name} {option}")
    for param in main.params:
        for option in getattr(param, "opts", []):
            if option.startswith("--") and option not in ("--version",) and option not in readme:
                missing.append(f"workbench {option}")
    assert missing == [], "undocumented in README.md: " + ", ".join(missing)


def test_exit_statuses_are_documented() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    for status in ("`0`", "`3`", "`2`", "`4`", "`130`"):
        assert status in readme
