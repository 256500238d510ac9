"""feedparser's own test documents as an oracle: per field, how many entry expectations the project's
reader meets, against feedparser itself, in one run (the comparison of tests/ingest/test_feedparser_suite.py).

    python bench/feedsuite.py
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.ingest.test_feedparser_suite import SUITE, format_table, suite_outcomes, table


def main() -> None:
    if not SUITE.is_dir():
        raise SystemExit(f"feedparser's test documents not found at {SUITE}")
    print(format_table(table(list(suite_outcomes()))))
    print("excused: misses feedparser does not make, each for a reason listed in the test")


if __name__ == "__main__":
    main()
