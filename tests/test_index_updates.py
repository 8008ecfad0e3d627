"""A page changed and re-indexed in the same process is found once, with its new fields.

The app keeps one process open for hours: it marks pages, syncs the index and searches
again, so whatever the search layer caches must see the re-indexed page and not the old one.
"""

from __future__ import annotations

import collections
import shutil
from pathlib import Path

from workbench import index, review, views
from workbench.store import Case


def test_marks_synced_between_searches_never_duplicate_a_page(
    ingested_small_trove, tmp_path: Path
) -> None:
    case_dir = tmp_path / "case"
    shutil.copytree(ingested_small_trove[0], case_dir)
    with Case.open(case_dir) as case:
        pages = [p["page_id"] for p in views.page_window(case, 0, 1000)]
        everything = index.matching_page_ids(case, "page_id:*")
        assert sorted(everything) == sorted(pages)
        target = pages[0]
        for status in ("verified", "disputed", "illegible", "unreviewed"):
            review.mark(case, [target], status, "Tester")
            index.sync(case)
            found = index.matching_page_ids(case, "page_id:*")
            twice = [p for p, n in collections.Counter(found).items() if n > 1]
            assert not twice, f"after marking {status}: {twice} found more than once"
            assert len(found) == len(pages)
            assert index.matching_page_ids(case, f"status:{status}") == (
                [target] if status != "unreviewed" else sorted(pages)
            )
            results = index.search(case, f"id:{target}", limit=10)
            assert results.total == 1 and len(results.hits) == 1
            assert results.hits[0].record["status"] == status


def test_identifier_fields_match_as_stored(ingested_small_trove, tmp_path: Path) -> None:
    """id:, doc: and path: values skip the lower-casing text normalisation."""
    from workbench import documents

    case_dir = tmp_path / "case"
    shutil.copytree(ingested_small_trove[0], case_dir)
    with Case.open(case_dir) as case:
        pages = views.page_window(case, 0, 3)
        first = pages[0]["page_id"]
        documents.add_document(case, [first, pages[1]["page_id"]], reviewer="Tester")
        index.sync(case)
        for query in (f"id:{first}", f"id:{first.lower()}", f"page_id:{first}"):
            assert index.matching_page_ids(case, query) == [first], query
        assert index.matching_page_ids(case, f"(id:{first} OR id:{pages[2]['page_id']})") == [
            first,
            pages[2]["page_id"],
        ]
        for query in ("doc:DOC-0001", "doc:doc-0001", "document:DOC-0001"):
            assert index.matching_page_ids(case, query) == [first, pages[1]["page_id"]], query
        path = pages[0]["source_path"]
        assert first in index.matching_page_ids(case, f'path:"{path}"')
        assert first in index.matching_page_ids(case, f"path:{path}")
        assert first not in index.matching_page_ids(case, f"NOT id:{first}")
