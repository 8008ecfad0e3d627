"""The Textual app on the large case: start to first idle paint, and status-key latency.

Measured only when ``workbench.tui.app`` exposes ``make_app``; otherwise reported as not
measured. The case is copied first: pressing ``v`` writes review decisions.
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import inspect
import os
import shutil
import time
from pathlib import Path
from typing import Any

from bench.common import median

NOT_YET = "not measured: the app does not exist yet (workbench/tui/app.py has no make_app)"
PRESSES = 5
POLL_TIMEOUT = 10.0


def available() -> bool:
    if importlib.util.find_spec("workbench.tui.app") is None:
        return False
    try:
        module = importlib.import_module("workbench.tui.app")
    except Exception:  # noqa: BLE001 - a half-written app is "not measurable"
        return False
    return callable(getattr(module, "make_app", None))


def _make(case_dir: Path):
    from workbench.store import Case
    from workbench.tui.app import make_app

    parameters = list(inspect.signature(make_app).parameters.values())
    first = parameters[0] if parameters else None
    if first is not None and (first.name == "case" or "Case" in str(first.annotation)):
        return make_app(Case.open(case_dir))
    return make_app(case_dir)


def _cursor_row_text(app) -> str | None:
    from textual.widgets import DataTable

    tables = list(app.screen.query(DataTable))
    if not tables:
        return None
    table = tables[0]
    if table.row_count == 0:
        return ""
    return " ".join(str(cell) for cell in table.get_row_at(table.cursor_row))


async def _measure(case_dir: Path) -> dict[str, Any]:
    started = time.perf_counter()
    app = _make(case_dir)
    async with app.run_test(size=(160, 50)) as pilot:
        await pilot.pause()  # returns once the app is idle with its first screen painted
        first_paint = time.perf_counter() - started
        if _cursor_row_text(app) is None:
            return {
                "first_idle_paint_seconds": round(first_paint, 3),
                "status_key": "not measured: no DataTable page list on the first screen",
            }
        latencies = []
        for _ in range(PRESSES):
            await pilot.press("down")
            await pilot.pause()
            before = _cursor_row_text(app) or ""
            pressed = time.perf_counter()
            await pilot.press("v")
            while True:
                text = _cursor_row_text(app) or ""
                if text != before and "verified" in text.lower():
                    break
                if time.perf_counter() - pressed > POLL_TIMEOUT:
                    raise TimeoutError("the page list never showed the new status")
                await asyncio.sleep(0.002)
            latencies.append(time.perf_counter() - pressed)
    return {
        "first_idle_paint_seconds": round(first_paint, 3),
        "status_key_median_ms": round(median(latencies) * 1000, 1),
        "status_key_presses": PRESSES,
    }


def run(case_dir: Path, work: Path) -> dict[str, Any]:
    if not available():
        return {"skipped": NOT_YET}
    copy = work / "case-app"
    shutil.copytree(case_dir, copy)
    os.environ.setdefault("WORKBENCH_REVIEWER", "bench")  # marks need a reviewer name
    try:
        return asyncio.run(_measure(copy))
    except Exception as error:  # noqa: BLE001 - report, do not lose the other figures
        return {"skipped": f"not measured: the app failed ({type(error).__name__}: {error})"}
    finally:
        shutil.rmtree(copy, ignore_errors=True)
