"""Counterfactual swaps along an attribute (lexicons) and robustness perturbations: pure text functions.

A lexicon is a JSON file: `attribute`, `values` (e.g. ["female", "male"]), `pairs` (rows of terms
aligned with `values`: ["she", "he"]), optional directional `rules` for words whose counterpart
depends on grammar ("her" becomes "his" before a noun, "him" otherwise), `source` and `licence`.
The shipped lexicons are in apps/datasets/lexicons/; a team adds its own under LEXICON_DIR
(every project sees them) or LEXICON_DIR/<project slug>/ (that project only). A team file with a
shipped file's attribute name replaces it.

A swap from value A to value B also swaps B's terms back to A in the same pass ("he told her"
becomes "she told him"), so a swap applied twice gives the text back, for the lexicons' terms.
"""

from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings

SHIPPED_DIR = Path(__file__).resolve().parent / "lexicons"
PERTURBATIONS = ("typos", "casing", "whitespace", "reorder", "paraphrase")


class LexiconError(Exception):
    """A lexicon that cannot be used, or a request naming an unknown one; the message names the problem."""


@dataclass
class Lexicon:
    attribute: str
    values: list[str]
    pairs: list[list[str]]
    rules: list[dict[str, Any]] = field(default_factory=list)
    object_followers: set[str] = field(default_factory=set)
    description: str = ""
    source: str = ""
    licence: str = ""
    origin: str = "shipped"  # shipped, team, project

    @property
    def value_pairs(self) -> list[tuple[str, str]]:
        return [(a, b) for i, a in enumerate(self.values) for b in self.values[i + 1 :]]

    def index(self, src: str, dst: str) -> dict[str, Any]:
        """word (lower-case) -> replacement (a string or {"before_word", "otherwise"}) from src to dst."""
        i, j = self.values.index(src), self.values.index(dst)
        table: dict[str, Any] = {}
        for row in self.pairs:
            table.setdefault(row[i].lower(), row[j])
        for rule in self.rules:
            if rule["from"] == src and rule["to"] == dst:
                table[rule["word"].lower()] = rule["replace"]
        return table


def _check(data: Any, where: str) -> None:
    if not isinstance(data, dict):
        raise LexiconError(f"{where}: a lexicon is a JSON object.")
    for key in ("attribute", "values", "pairs", "source", "licence"):
        if not data.get(key):
            raise LexiconError(f"{where}: the lexicon has no '{key}'.")
    values = data["values"]
    if not isinstance(values, list) or len(values) < 2 or len(set(values)) != len(values):
        raise LexiconError(f"{where}: 'values' must list at least two different attribute values.")
    for n, row in enumerate(data["pairs"], start=1):
        if not isinstance(row, list) or len(row) != len(values) or not all(isinstance(t, str) and t for t in row):
            raise LexiconError(f"{where}: pair {n} must hold {len(values)} terms, one per value.")
    for column in range(len(values)):
        seen = [row[column].lower() for row in data["pairs"]]
        duplicates = sorted({t for t in seen if seen.count(t) > 1})
        if duplicates:
            raise LexiconError(
                f"{where}: '{duplicates[0]}' appears twice for '{values[column]}', so a swap is ambiguous."
            )
    for n, rule in enumerate(data.get("rules", []), start=1):
        if not isinstance(rule, dict) or rule.get("from") not in values or rule.get("to") not in values:
            raise LexiconError(f"{where}: rule {n} needs 'from' and 'to' among the values.")
        if not rule.get("word") or not isinstance(rule.get("replace"), str | dict):
            raise LexiconError(f"{where}: rule {n} needs a 'word' and a 'replace'.")


def lexicon_from_data(data: Any, *, where: str = "lexicon", origin: str = "team") -> Lexicon:
    _check(data, where)
    return Lexicon(
        attribute=str(data["attribute"]),
        values=list(data["values"]),
        pairs=[list(row) for row in data["pairs"]],
        rules=list(data.get("rules", [])),
        object_followers={w.lower() for w in data.get("object_followers", [])},
        description=data.get("description", ""),
        source=data["source"],
        licence=data["licence"],
        origin=origin,
    )


def _load_dir(folder: Path, origin: str) -> dict[str, Lexicon]:
    found = {}
    if not folder.is_dir():
        return found
    for path in sorted(folder.glob("*.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise LexiconError(f"{path.name}: not valid JSON ({exc}).") from exc
        lexicon = lexicon_from_data(data, where=path.name, origin=origin)
        found[lexicon.attribute] = lexicon
    return found


def lexicons(project_slug: str | None = None) -> dict[str, Lexicon]:
    """Every lexicon a project can use, by attribute: shipped, then the team's folder, then the project's."""
    found = _load_dir(SHIPPED_DIR, "shipped")
    team_dir = Path(settings.LEXICON_DIR)
    found.update(_load_dir(team_dir, "team"))
    if project_slug:
        found.update(_load_dir(team_dir / project_slug, "project"))
    return found


def lexicon_get(attribute: str, project_slug: str | None = None) -> Lexicon:
    available = lexicons(project_slug)
    if attribute not in available:
        raise LexiconError(f"No lexicon for '{attribute}'; there are: {', '.join(sorted(available))}.")
    return available[attribute]


# --- swapping -------------------------------------------------------------------------------------


def _match_case(source: str, replacement: str) -> str:
    if source.isupper() and len(source) > 1:
        return replacement.upper()
    if source[:1].isupper():
        return replacement[:1].upper() + replacement[1:]
    if source.islower() and replacement[:1].isupper() and not replacement.isupper():
        return replacement  # names keep their capital even when the source was typed in lower case
    return replacement


NEXT_WORD = re.compile(r"\s+([A-Za-z][\w'-]*)")


def _choose(replacement: Any, text: str, end: int, followers: set[str]) -> str:
    if isinstance(replacement, str):
        return replacement
    following = NEXT_WORD.match(text, end)
    before_word = following is not None and following.group(1).lower() not in followers
    return replacement["before_word"] if before_word else replacement["otherwise"]


@dataclass
class Swap:
    text: str
    counts: dict[str, int]  # how many terms of each of the two values were found


def _pattern(words: list[str]) -> re.Pattern:
    ordered = sorted(set(words), key=len, reverse=True)
    alternation = "|".join(re.escape(w) for w in ordered)
    return re.compile(rf"(?<![\w-])({alternation})(?![\w-])", re.IGNORECASE)


def swap_text(text: str, lexicon: Lexicon, a: str, b: str) -> Swap:
    """Swap a's terms to b's and b's to a's in one pass, keeping case and the grammar the lexicon states."""
    forward, backward = lexicon.index(a, b), lexicon.index(b, a)
    counts = {a: 0, b: 0}
    if not isinstance(text, str) or not text:
        return Swap(text, counts)
    pattern = _pattern([*forward, *backward])

    def replace(match: re.Match) -> str:
        word = match.group(1)
        key = word.lower()
        if key in forward:
            counts[a] += 1
            chosen = _choose(forward[key], match.string, match.end(), lexicon.object_followers)
        else:
            counts[b] += 1
            chosen = _choose(backward[key], match.string, match.end(), lexicon.object_followers)
        return _match_case(word, chosen)

    return Swap(pattern.sub(replace, text), counts)


# --- perturbations --------------------------------------------------------------------------------

LIST_ITEM = re.compile(r"^\s*(?:[-*•]|\d+[.)])\s+")


def typos(text: str, rng: random.Random, rate: float = 0.05) -> str:
    """Swap, drop or double letters inside words, about `rate` of the letters."""
    chars = list(text)
    out: list[str] = []
    i = 0
    while i < len(chars):
        c = chars[i]
        if c.isalpha() and rng.random() < rate:
            kind = rng.choice(("swap", "drop", "double"))
            if kind == "swap" and i + 1 < len(chars) and chars[i + 1].isalpha():
                out.extend((chars[i + 1], c))
                i += 2
                continue
            if kind == "drop":
                i += 1
                continue
            out.extend((c, c))
            i += 1
            continue
        out.append(c)
        i += 1
    return "".join(out)


def casing(text: str, rng: random.Random) -> str:
    return rng.choice((str.lower, str.upper, str.title, str.swapcase))(text)


def whitespace(text: str, rng: random.Random) -> str:
    """Doubles some spaces, adds leading and trailing blanks and a stray line break."""
    words = text.split(" ")
    spaced = "".join(w + (" " * rng.choice((1, 1, 2, 3)) if i < len(words) - 1 else "") for i, w in enumerate(words))
    return "  " + spaced.replace(". ", ".\n", 1) + " \n"


def reorder(text: str, rng: random.Random) -> str:
    """Shuffles list items: lines starting with -, *, • or a number; else comma-separated items of one line."""
    lines = text.split("\n")
    positions = [i for i, line in enumerate(lines) if LIST_ITEM.match(line)]
    if len(positions) >= 2:
        items = [lines[i] for i in positions]
        for _ in range(10):
            rng.shuffle(items)
            if items != [lines[i] for i in positions]:
                break
        numbered = [re.sub(r"^(\s*)\d+([.)])", lambda m, n=n: f"{m.group(1)}{n}{m.group(2)}", item)
                    for n, item in enumerate(items, start=1)]  # fmt: skip
        for i, item in zip(positions, numbered, strict=True):
            lines[i] = item
        return "\n".join(lines)
    parts = [p.strip() for p in text.split(",")]
    if len(parts) >= 3:
        original = list(parts)
        for _ in range(10):
            rng.shuffle(parts)
            if parts != original:
                break
        return ", ".join(parts)
    return text


def perturb_text(text: str, kind: str, rng: random.Random, *, rate: float = 0.05) -> str:
    if kind == "typos":
        return typos(text, rng, rate)
    if kind == "casing":
        return casing(text, rng)
    if kind == "whitespace":
        return whitespace(text, rng)
    if kind == "reorder":
        return reorder(text, rng)
    raise LexiconError(f"Unknown perturbation '{kind}'; use one of {', '.join(PERTURBATIONS)}.")


# Paraphrase needs a model, which only a higher app may call (experiments registers it at start-up):
# a function (project, endpoint_id or None) -> (text -> paraphrased text).
_paraphraser = None


def register_paraphraser(factory) -> None:
    global _paraphraser
    _paraphraser = factory


def paraphraser_for(project, endpoint_id: int | None):
    if _paraphraser is None:
        raise LexiconError("Paraphrase needs the experiments app, which is not installed.")
    return _paraphraser(project, endpoint_id)
