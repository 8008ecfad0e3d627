"""The case's checks, one module per check, behind one registry.

Adding a check: write a module with a :class:`~workbench.checks.base.Check` subclass and
list it in ``_MODULES``. The runner (``workbench.findings``) knows nothing of any check.
"""

from __future__ import annotations

import importlib

from workbench.checks.base import Check
from workbench.errors import UsageError

# (check name, module): modules are imported only when their check runs.
_MODULES: dict[str, str] = {
    "page-sequence": "workbench.checks.page_sequence",
    "metadata-mismatch": "workbench.checks.metadata_mismatch",
    "anachronism": "workbench.checks.anachronism",
    "revisions": "workbench.checks.revisions",
    "odd-page": "workbench.checks.odd_page",
    "near-duplicate": "workbench.checks.near_duplicate",
    "copy-difference": "workbench.checks.copy_difference",
    "bad-redaction": "workbench.checks.bad_redaction",
    "hidden-content": "workbench.checks.hidden_content",
    "active-content": "workbench.checks.active_content",
    "identifying-metadata": "workbench.checks.identifying_metadata",
    "tracking-dots": "workbench.checks.tracking_dots",
}


def names() -> list[str]:
    """Every check's name, in the order they run."""
    return list(_MODULES)


def get(name: str) -> Check:
    """The check called ``name``; a UsageError naming the known checks otherwise."""
    module_name = _MODULES.get(name)
    if module_name is None:
        raise UsageError(f"no check called {name!r}; the checks are: {', '.join(_MODULES)}")
    module = importlib.import_module(module_name)
    return module.CHECK


def select(only: list[str] | None) -> list[Check]:
    """The checks to run: all, or those named (in registry order)."""
    if not only:
        return [get(name) for name in _MODULES]
    wanted = [name.strip() for name in only if name.strip()]
    for name in wanted:
        get(name)  # raises for an unknown name before anything runs
    return [get(name) for name in _MODULES if name in wanted]
