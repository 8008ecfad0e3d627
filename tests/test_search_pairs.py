"""Phrases answered from the word-pair field, and totals counted in the scoring pass
(issue #15): the same pages, scores, order, totals and snippets as Whoosh's own phrase
query and its two-pass count."""

from __future__ import annotations

import random

import pytest

from workbench import index
from workbench.store import Case

# (text, the pages' name) written on purpose: each one is a trap for pairs done wrong
CRAFTED = {
    "linebreak": "the crude oil\nshipments left Bandar Abbas",
    "split": "crude oil was late; oil shipments resumed",  # both pairs, never the phrase
    "exact": "we saw crude oil shipments at the port",
    "twice": "crude oil shipments then crude oil shipments again, crude oil",
    "stopword": "a note from the embassy of the republic",
    "arabic_forms": "گزارش صادرات نفت ايران به كشورهاي همسايه",  # Arabic yeh and kaf
    "zwnj": "او فردا به تهران می\u200cرود و نامه\u200cها را می\u200cبرد",
    "reversed": "shipments oil crude",
    "repeat": "oil oil oil shipments",
}
PHRASES = [
    '"crude oil shipments"',
    '"crude oil"',
    '"oil shipments"',
    '"the embassy"',
    '"from the embassy of"',
    '"oil"',
    '"oil oil shipments"',
    '"oil oil oil"',
    '"صادرات نفت ایران"',
    '"كشورهاي همسايه"',
    '"تهران میرود"',
    '"تهران می رود"',
    '"نامهها را"',
    '"crude oil shipments" AND port',
    '"crude oil" NOT "oil shipments"',
    '"crude oil" OR "oil shipments"',
    '"no such phrase"',
    '"crude oil"~2',
]
WORDS = ["oil", "crude", "shipments", "the", "embassy", "نفت", "صادرات", "ایران", "port"]


@pytest.fixture(scope="module")
def phrase_case(tmp_path_factory):
    """The crafted pages and 300 pages of random words (pairs and repeats of every kind)."""
    rng = random.Random(15)
    texts = dict(CRAFTED)
    for number in range(300):
        texts[f"random{number}"] = " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 40)))
    names: dict[str, str] = {}
    with Case.open(tmp_path_factory.mktemp("pairs") / "case", create=True) as case:
        with case.transaction():
            for number, (name, text) in enumerate(texts.items()):
                source = case.record_source(
                    path=f"/synthetic/{name}.pdf", sha256=f"{number:064x}", size=1,
                    kind="pdf", status="ingested", page_count=1,
                )  # fmt: skip
                page_id = case.add_page(
                    source, {"page_number": 1, "text": text, "text_source": "layer"}
                )
                names[page_id] = name
        index.sync(case)
        yield case, names


def _found(case, query, **kwargs):
    """What search, bulk marking and the app's status counts answer for a query."""
    results = index.search(case, query, limit=500, **kwargs)
    hits = [
        (h.record["page_id"], h.score, h.snippet, h.snippet_matches, h.matches)
        for h in results.hits
    ]
    return (
        results.total,
        hits,
        index.matching_page_ids(case, query),
        index.current_matching_page_ids(case, query),
        index.count_by_status(case, query),
    )


def _random_phrases(count: int) -> list[str]:
    rng = random.Random(16)
    return [
        '"' + " ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 4))) + '"'
        for _ in range(count)
    ]


@pytest.mark.parametrize("query", PHRASES + _random_phrases(40))
def test_pair_phrases_give_whooshs_own_pages_scores_order_and_snippets(
    phrase_case, query, monkeypatch
):
    case, _ = phrase_case
    paired = _found(case, query)
    monkeypatch.setattr(index, "_pair_phrases", lambda query: query)
    plain = _found(case, query)
    assert paired == plain


def test_phrases_match_exactly_the_adjacent_words(phrase_case):
    case, names = phrase_case

    def pages(query):
        return {names[h.record["page_id"]] for h in index.search(case, query, limit=500).hits}

    crafted = set(CRAFTED)
    assert pages('"crude oil shipments"') & crafted == {"linebreak", "exact", "twice"}
    assert "split" in pages('"crude oil"') and "split" in pages('"oil shipments"')
    assert pages('"the embassy"') & crafted == {"stopword"}
    assert pages('"صادرات نفت ایران"') & crafted == {"arabic_forms"}
    assert pages('"كشورهاي همسايه"') == {"arabic_forms"}
    assert pages('"تهران میرود"') == pages('"تهران می\u200cرود"') == {"zwnj"}
    assert pages('"oil oil shipments"') & crafted == {"repeat"}
    assert "reversed" not in pages('"crude oil shipments"') | pages('"oil crude shipments"')
    assert pages('"oil"') == pages("oil")


def test_text_phrases_use_the_pairs_and_others_keep_whooshs_phrase():
    phrase = index.parse_query('"crude oil" AND note:"left port" AND "crude oil"~3')
    kinds = sorted(type(q).__name__ for q in phrase.leaves())
    assert kinds == ["PairPhrase", "Phrase", "Phrase"]
    assert type(index.parse_query('"oil"')).__name__ == "Term"


def test_totals_are_exact_when_a_union_could_be_narrowed(tmp_path):
    """Counting in the scoring pass must not let Whoosh drop a side of an OR that can no
    longer reach the top hits (its 'replace' optimisation): every page is counted."""
    with Case.open(tmp_path / "case", create=True) as case:
        with case.transaction():
            for number in range(200):
                text = "embassy " * 30 if number % 2 else "consulate " + "filler " * 300
                source = case.record_source(
                    path=f"/synthetic/{number}.pdf", sha256=f"{number:064x}", size=1,
                    kind="pdf", status="ingested", page_count=1,
                )  # fmt: skip
                case.add_page(source, {"page_number": 1, "text": text, "text_source": "layer"})
        index.sync(case)
        for limit in (1, 20):
            assert index.search(case, "embassy OR consulate", limit=limit).total == 200
            assert index.search(case, "consulate OR embassy", limit=limit).total == 200
        assert len(index.matching_page_ids(case, "embassy OR consulate")) == 200
    index.close_searchers()


def test_pair_phrases_skip_deleted_copies_across_segments(tmp_path, monkeypatch):
    """Pages indexed again leave deleted copies in the older segment: still Whoosh's answer."""
    rng = random.Random(17)
    with Case.open(tmp_path / "case", create=True) as case:
        with case.transaction():
            for number in range(120):
                text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 30)))
                source = case.record_source(
                    path=f"/synthetic/{number}.pdf", sha256=f"{number:064x}", size=1,
                    kind="pdf", status="ingested", page_count=1,
                )  # fmt: skip
                case.add_page(source, {"page_number": 1, "text": text, "text_source": "layer"})
        index.sync(case)
        case.queue_all_pages_for_index()
        index.sync(case, batches=1)  # 500 a batch: every page again, old copies deleted
        with index._searcher(case) as searcher:
            assert searcher.reader().has_deletions()
        queries = PHRASES[:6] + _random_phrases(10)
        paired = {query: _found(case, query) for query in queries}
        monkeypatch.setattr(index, "_pair_phrases", lambda query: query)
        assert paired == {query: _found(case, query) for query in queries}
        assert paired['"crude oil"'][0] > 0
    index.close_searchers()


def test_totals_are_exact_when_block_max_skipping_skips(tmp_path):
    """A scene where Whoosh's block-max skipping skips pages that cannot reach the top
    (and then counts in a second pass): search's one pass must count every page."""
    with Case.open(tmp_path / "case", create=True) as case:
        with case.transaction():
            for number in range(1200):
                # the first pages score higher and higher: the bound rises as they come
                text = "oil " * (10 + number) if number < 30 else "oil " + "filler " * 200
                source = case.record_source(
                    path=f"/synthetic/{number}.pdf", sha256=f"{number:064x}", size=1,
                    kind="pdf", status="ingested", page_count=1,
                )  # fmt: skip
                case.add_page(source, {"page_number": 1, "text": text, "text_source": "layer"})
        index.sync(case)
        with index._searcher(case) as searcher:  # the scene skips, with Whoosh's defaults
            collector = searcher.collector(limit=20)
            query = index.parse_query("oil")
            context = searcher.context(needs_current=True)
            searcher.search_with_collector(query, collector, context=context)
            assert collector.skipped_times > 0
        assert index.search(case, "oil").total == 1200
        assert index.search(case, "oil", limit=5, offset=10).total == 1200
    index.close_searchers()
