"""Line images (#11 item 3): CER of one-line images through the normal ingest, per script,
against plain ``tesseract`` (default page segmentation) on the same files.

The sets come from ``fixtures.lines`` (cached like the troves): Persian lines (half with
two Latin words) ingested with ``--lang fas+eng``, Arabic with ``ara``, English with
``eng``; one ``workbench ingest FOLDER`` per set, no per-file options. Plain Tesseract
reads each file as it is, with the set's languages: what a user gets without workbench.

Run alone: ``python -m bench.lines [--per-script N]``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from bench.common import CORES, cache_root, fixtures_key, ingest
from workbench.quality import character_error_rate
from workbench.store import Case

#: Mean CER goals per set (issue #11 item 3).
GOALS = {"fas": 0.05, "ara": 0.15, "eng": 0.02}
SCRIPT_NAMES = {"fas": "Persian", "ara": "Arabic", "eng": "English"}


def cached_lines(per_script: int, seed: int = 1) -> Path:
    """The line sets, generated once per fixtures version and kept in the bench cache."""
    from fixtures.lines import generate_lines

    folder = cache_root() / fixtures_key() / f"lines-n{per_script}-seed{seed}"
    done = folder / ".complete"
    if not done.exists():
        shutil.rmtree(folder, ignore_errors=True)
        generate_lines(folder, per_script=per_script, seed=seed)
        done.write_text("ok\n")
    return folder


def _plain_tesseract(path: Path, lang: str) -> str:
    env = {**os.environ, "OMP_THREAD_LIMIT": "1"}
    found = subprocess.run(
        ["tesseract", str(path), "stdout", "-l", lang],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return found.stdout


def _mean(values: list[float]) -> float | None:
    return round(sum(values) / len(values), 4) if values else None


def run(work: Path, per_script: int) -> dict[str, Any]:
    """Ingest each line set into its own case; CER per set, workbench and plain Tesseract."""
    folder = cached_lines(per_script)
    truth = json.loads((folder / "ground_truth.json").read_text(encoding="utf-8"))
    result: dict[str, Any] = {"lines_per_script": per_script, "jobs": CORES, "sets": {}}
    for script, lang in truth["langs"].items():
        lines = [line for line in truth["lines"] if line["script"] == script]
        case_dir = work / f"case-lines-{script}"
        ran = ingest(case_dir, [str(folder / script)], jobs=CORES, lang=lang)
        with Case.open(case_dir) as case:
            rows = {Path(row["source_path"]).name: dict(row) for row in case.page_rows()}
        ours, plain, ours_upright, plain_upright, mixed = [], [], [], [], []
        rotation_right = 0
        methods: dict[str, int] = {}
        for line in lines:
            row = rows.get(Path(line["path"]).name, {})
            cer = character_error_rate(line["text"], row.get("text") or "")
            ours.append(cer)
            if line["rotation"] == 0:
                ours_upright.append(cer)
            if line["mixed"]:
                mixed.append(cer)
            rotation_right += row.get("ocr_rotation") == (360 - line["rotation"]) % 360
            method = row.get("orientation_method") or "none"
            methods[method] = methods.get(method, 0) + 1
            reference = _plain_tesseract(folder / line["path"], lang)
            plain.append(character_error_rate(line["text"], reference))
            if line["rotation"] == 0:
                plain_upright.append(plain[-1])
        result["sets"][script] = {
            "lang": lang,
            "lines": len(lines),
            "ingest_seconds": round(ran.seconds, 2),
            "workbench_cer": _mean(ours),
            "workbench_cer_max": round(max(ours), 4) if ours else None,
            "workbench_cer_upright_lines": _mean(ours_upright),
            "workbench_cer_mixed_lines": _mean(mixed),
            "tesseract_default_psm_cer": _mean(plain),
            "tesseract_default_psm_cer_upright_lines": _mean(plain_upright),
            "rotation_right": f"{rotation_right}/{len(lines)}",
            "orientation_methods": methods,
            "turned_lines": sum(1 for line in lines if line["rotation"]),
        }
    return result


def rows(result: dict[str, Any]) -> list[tuple[str, str, str, bool | None]]:
    """(figure, value, goal, passed) rows for bench.run's table."""
    out: list[tuple[str, str, str, bool | None]] = []
    for script, s in result["sets"].items():
        name = f"line images, {s['lines']} {SCRIPT_NAMES[script]} ({s['lang']})"
        goal = GOALS[script]
        out.append((f"{name}: CER", f"{s['workbench_cer']:.3f}", f"<= {goal:g}",
                    s["workbench_cer"] <= goal))  # fmt: skip
        out.append(("  plain tesseract, default psm", f"{s['tesseract_default_psm_cer']:.3f}",
                    "", None))  # fmt: skip
        ours, plain = s["workbench_cer_upright_lines"], s["tesseract_default_psm_cer_upright_lines"]
        if ours is not None and plain is not None:
            out.append(("  upright lines only: workbench / plain", f"{ours:.3f} / {plain:.3f}",
                        "", None))  # fmt: skip
        if s["workbench_cer_mixed_lines"] is not None:
            out.append(("  lines with two Latin words", f"{s['workbench_cer_mixed_lines']:.3f}",
                        "", None))  # fmt: skip
        out.append(("  right way up after ingest", s["rotation_right"], "", None))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--per-script", type=int, default=40)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="wb-bench-lines-") as tmp:
        result = run(Path(tmp), args.per_script)
    print(json.dumps(result, indent=1, ensure_ascii=False))
    for figure, value, goal, passed in rows(result):
        verdict = "" if passed is None else ("pass" if passed else "FAIL")
        print(f"{figure:<60} {value:>10}  {goal:<8} {verdict}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
