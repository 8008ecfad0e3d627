"""The README cannot drift from the CLI: every command and option is documented."""

from __future__ import annotations

from tests.conftest import REPO
from workbench.cli import main


def test_every_command_and_option_is_in_the_readme() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    missing = []
    commands = list(main.commands.items())
    for group_name, group in list(commands):
        if hasattr(group, "commands"):
            commands += [(f"{group_name} {n}", c) for n, c in group.commands.items()]
    for name, command in commands:
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


def test_the_readme_recipe_verifies_an_exported_log(small_trove, tmp_path) -> None:
    """The README's 'nothing but sha256 and JSON' check works on a real export."""
    import re
    import subprocess
    import sys

    from click.testing import CliRunner

    from workbench.cli import main

    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("nothing but sha256 and JSON") :]
    recipe = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    recipe = recipe.replace('open("log.jsonl"', "open(sys.argv[1]").replace(
        "import hashlib, json", "import hashlib, json, sys"
    )
    script = tmp_path / "check.py"
    script.write_text(recipe, encoding="utf-8")

    runner = CliRunner()
    env = {"WORKBENCH_CASE": str(tmp_path / "case"), "WORKBENCH_REVIEWER": "آزاده"}
    pdfs = sorted((small_trove / "born_digital").rglob("*.pdf"))[:1]
    assert runner.invoke(main, ["ingest", str(pdfs[0]), "--quiet"], env=env).exit_code == 0
    runner.invoke(
        main, ["mark", "WB-000001", "--status", "disputed", "--note", "مهر جعلی"], env=env
    )
    runner.invoke(main, ["note", "WB-000001", "checked twice"], env=env)
    log = tmp_path / "log.jsonl"
    result = runner.invoke(main, ["export", "--format", "jsonl", "-o", str(log)], env=env)
    assert result.exit_code == 0, result.stderr
    head = runner.invoke(main, ["log", "verify"], env=env).stdout.split("chain head")[1].split()[0]

    checked = subprocess.run(
        [sys.executable, str(script), str(log)], capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout.strip() == f"chain head {head}"
    verified = runner.invoke(main, ["log", "verify", "--file", str(log), "--head", head])
    assert verified.exit_code == 0, verified.stderr

    log.write_text(log.read_text(encoding="utf-8").replace("disputed", "verified"), "utf-8")
    checked = subprocess.run(
        [sys.executable, str(script), str(log)], capture_output=True, text=True
    )
    assert checked.returncode != 0
    assert runner.invoke(main, ["log", "verify", "--file", str(log)]).exit_code == 6


def test_the_two_newsrooms_walkthrough_runs_as_written(small_trove, tmp_path) -> None:
    """README's two-newsroom walkthrough, every line run by bash exactly as written, in a
    folder holding the fixture trove's born-digital files as trove/."""
    import os
    import re
    import shutil
    import subprocess
    import sys

    import pytest

    if shutil.which("ssh-keygen") is None:
        pytest.skip("ssh-keygen (openssh-client) is not installed")
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Two newsrooms, one trove") :]
    script = re.search(r"```sh\n(.*?)```", section, re.S).group(1)
    shutil.copytree(small_trove / "born_digital", tmp_path / "trove")
    env = {k: v for k, v in os.environ.items() if not k.startswith("WORKBENCH_")}
    env["PATH"] = f"{os.path.dirname(sys.executable)}{os.pathsep}{env.get('PATH', '')}"
    assert shutil.which("workbench", path=env["PATH"]), "the workbench command is not installed"
    done = subprocess.run(
        ["bash", "-e", "-c", script],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "signed      checkpoint #8 by bob@paperb" in out
    assert "imported Paper B: 8 event(s) (8 new)" in out
    assert (
        "Paper B: 1 both verified, 1 both disputed, 1 we disagree, 4 only they reviewed,"
        " 3 neither reviewed, 12 pages they do not have" in out
    )
    assert "1 page(s) match; showing 1-1" in out
    assert out.rstrip().endswith(
        "log verified: the chain is intact, every page's state follows from it"
        " and every file matches"
    )
