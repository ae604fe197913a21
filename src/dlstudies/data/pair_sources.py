"""Sentence pairs for translation, made offline: numbers written out in two languages (num2words),
dates in English formats and another locale's long form (babel), or a tab-separated file.

Each source returns ``(source, target)`` strings; the generated ones are deterministic for a seed
and hold no repeated source, so a test item never also appears in training.
"""

import datetime
import math
import random
from collections.abc import Callable
from pathlib import Path

from dlstudies.config.errors import ConfigError

NUMBER_JOIN = "; "  # between the numbers of one item: num2words' English uses commas inside numbers
# English source formats of one date (the 2-digit-year "short" format is left out: it is ambiguous).
DATE_FORMATS = ("full", "long", "medium", "d MMMM y", "d MMM y", "EEEE d MMMM y", "MM/dd/y", "y-MM-dd")
FIRST_DAY, DAYS = datetime.date(1900, 1, 1), 200 * 365


def parse_range(value: int | str, name: str) -> tuple[int, int]:
    """``3`` -> (3, 3) and ``"1-4"`` -> (1, 4); anything else is a one-line error."""
    low, _, high = str(value).partition("-")
    try:
        bounds = int(low), int(high or low)
    except ValueError:
        bounds = (0, 0)
    if not 1 <= bounds[0] <= bounds[1]:
        raise ConfigError(f"{name}={value!r} is not allowed; give an integer >= 1 or a range like 1-4")
    return bounds


def unique_pairs(draw: Callable[[random.Random], tuple[str, str]], num_pairs: int, seed: int) -> list[tuple[str, str]]:
    """Up to ``num_pairs`` pairs from ``draw`` with distinct sources (fewer when the source space
    is smaller: it stops after 20 draws per wanted pair)."""
    rng, pairs = random.Random(seed), {}
    for _ in range(20 * num_pairs):
        source, target = draw(rng)
        pairs.setdefault(source, target)
        if len(pairs) == num_pairs:
            break
    return list(pairs.items())


def number_pairs(num_pairs: int, max_number: int = 10**7, src_lang: str = "en", tgt_lang: str = "fr",
                 numbers_per_item: int | str = 1, seed: int = 0) -> list[tuple[str, str]]:
    """Integers written out in ``src_lang`` and ``tgt_lang``, drawn log-uniformly from
    1..``max_number`` so that short and long numbers are equally common; an item joins
    ``numbers_per_item`` (a count or a range "1-4") of them."""
    from num2words import CONVERTER_CLASSES, num2words  # imported here: only this source needs it

    for key, lang in (("src_lang", src_lang), ("tgt_lang", tgt_lang)):
        if lang not in CONVERTER_CLASSES:
            raise ConfigError(f"data.{key}={lang} is not a language num2words knows; use one of "
                              f"{', '.join(sorted(CONVERTER_CLASSES))}")
    if max_number < 1:
        raise ConfigError(f"data.max_number={max_number} is not allowed; it must be an integer >= 1")
    low, high = parse_range(numbers_per_item, "data.numbers_per_item")

    def draw(rng: random.Random) -> tuple[str, str]:
        numbers = [int(math.exp(rng.uniform(0, math.log(max_number + 1)))) for _ in range(rng.randint(low, high))]
        numbers = [min(n, max_number) for n in numbers]
        return tuple(NUMBER_JOIN.join(num2words(n, lang=lang) for n in numbers) for lang in (src_lang, tgt_lang))

    return unique_pairs(draw, num_pairs, seed)


def date_pairs(num_pairs: int, tgt_locale: str = "fr", seed: int = 0) -> list[tuple[str, str]]:
    """A date of 1900-2099 in one of several English formats -> its long form in ``tgt_locale``
    ("Thursday, March 4, 2021" -> "4 mars 2021")."""
    from babel import Locale, UnknownLocaleError
    from babel.dates import format_date

    try:
        Locale.parse(tgt_locale)
    except (UnknownLocaleError, ValueError, TypeError):
        raise ConfigError(f"data.tgt_locale={tgt_locale} is not a locale babel knows (e.g. fr, de, es_MX)") from None

    def draw(rng: random.Random) -> tuple[str, str]:
        date = FIRST_DAY + datetime.timedelta(days=rng.randrange(DAYS))
        source = format_date(date, format=rng.choice(DATE_FORMATS), locale="en_US")
        return source, format_date(date, format="long", locale=tgt_locale)

    return unique_pairs(draw, num_pairs, seed)


def read_pairs(path: str | Path) -> list[tuple[str, str]]:
    """The (source, target) pairs of a tab-separated file, one per line; further columns (the
    attribution of Tatoeba/Anki files) are ignored, blank lines skipped."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise ConfigError(f"data.path={path} does not exist; give a tab-separated file of pairs")
    pairs = []
    for number, line in enumerate(file.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        if "\t" not in line:
            raise ConfigError(f"data.path={path}: line {number} has no tab; each line must be source<TAB>target")
        source, target = line.split("\t")[:2]
        pairs.append((source.strip(), target.strip()))
    if not pairs:
        raise ConfigError(f"data.path={path} holds no pairs; give lines of source<TAB>target")
    return pairs
