"""Secondary suppression: a withheld count must not be recomputable from what is shown.

Published figures are tied by sums: a total is the sum of its breakdowns along each
dimension (`chronic.alerts` = Σ `severity=` = Σ `rule=`), and some indicators equal or
contain another (`home.missed_visits` = `home.incidents|kind=visit_missed`). A relation
with a single unknown gives it away by subtraction. The rule (Insee, *Manuel de protection
des tableaux*, "secret secondaire"; the same as Tau-Argus's and sdcTable's):

1. primary: counts from 1 to 9 are withheld (the small-cell rule, cells.py);
2. while some withheld count can still be solved exactly from the shown figures and the
   relations (checked by linear algebra, not only line by line: a relation with one
   unknown is the common case, but several relations together can also solve one),
   withhold the smallest non-zero shown count tied to it that protects it ("the next
   smallest cell", so as little as possible is lost); when no single count does, the
   smallest in its own relations, and look again.

A part of a total that is not itself published (escalations not to the SAMU = escalations
- escalations to the SAMU) is an unknown too: when it is from 1 to 9 it is protected like
a withheld count.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction

# (indicator, breakdown): one published count.
Key = tuple[str, str]


@dataclass(frozen=True)
class Relation:
    """total = Σ parts (+ what no published figure holds, the rest)."""

    total: Key
    parts: tuple[Key, ...]


def small(value: float, threshold: int) -> bool:
    return 0 < value < threshold


def relations_of(counts: Mapping[Key, float], declared: Iterable[Relation]) -> list[Relation]:
    """Each total with its breakdowns, one relation per dimension, and the declared ones
    whose total is published."""
    by_dimension: dict[tuple[str, str], list[Key]] = {}
    for name, breakdown in counts:
        if breakdown:
            dimension = breakdown.split("=", 1)[0]
            by_dimension.setdefault((name, dimension), []).append((name, breakdown))
    out = [Relation((name, ""), tuple(sorted(parts))) for (name, _), parts in by_dimension.items()]
    out.extend(r for r in declared if r.total in counts)
    return out


def withheld(
    counts: Mapping[Key, float], declared: Iterable[Relation] = (), threshold: int = 10
) -> set[Key]:
    """The counts to withhold: the small ones, and enough others that none of those (nor a
    small unpublished rest) can be solved from the rest."""
    relations = relations_of(counts, declared)
    hidden = {key for key, value in counts.items() if small(value, threshold)}
    for group in connected(relations):
        hidden |= withheld_in(counts, group, threshold)
    return hidden


def connected(relations: Sequence[Relation]) -> list[list[Relation]]:
    """The relations in groups that share no count: each group is protected on its own."""
    groups: list[tuple[set[Key], list[Relation]]] = []
    for relation in relations:
        keys = set(members(relation))
        joined = [g for g in groups if g[0] & keys]
        for g in joined:
            groups.remove(g)
            keys |= g[0]
        groups.append((keys, [r for g in joined for r in g[1]] + [relation]))
    return [g[1] for g in groups]


def withheld_in(
    counts: Mapping[Key, float], relations: Sequence[Relation], threshold: int
) -> set[Key]:
    keys = {k for r in relations for k in members(r)}
    primary = {k for k in keys if small(counts.get(k, 0), threshold)}
    rests = [rest_of(counts, r) for r in relations]
    # Totals with breakdowns are the headline figures: withheld only when nothing else helps.
    margins = {r.total for r in relations if r.total[0] in {p[0] for p in r.parts}}
    hidden = set(primary)
    while True:
        exposed = solvable(relations, rests, primary, hidden, threshold)
        choice = next(
            (
                c
                for key in exposed
                if (c := complement(counts, relations, rests, hidden, margins, key))
            ),
            None,
        )
        if choice is None:
            # None exposed, or every count tied to the exposed ones withheld or zero.
            break
        hidden.add(choice)
    return pruned(counts, relations, rests, primary, hidden, threshold)


def pruned(
    counts: Mapping[Key, float],
    relations: Sequence[Relation],
    rests: Sequence[float],
    primary: set[Key],
    hidden: set[Key],
    threshold: int,
) -> set[Key]:
    """The secondary choices, each shown again (the largest first) when the others
    protect everything without it: a choice made early may have become unneeded."""
    kept = set(hidden)
    for key in sorted(hidden - primary, key=lambda k: (-counts[k], k)):
        if not solvable(relations, rests, primary, kept - {key}, threshold):
            kept.discard(key)
    return kept


def complement(
    counts: Mapping[Key, float],
    relations: Sequence[Relation],
    rests: Sequence[float],
    hidden: set[Key],
    margins: set[Key],
    exposed: Key,
) -> Key | None:
    """The count to withhold for an exposed one: the smallest tied to it (through its sums
    and the withheld counts in them) whose withholding alone protects it, a total last;
    when none does alone, the smallest of the nearest sums (the next round adds another)."""
    tiers = tied_counts(counts, relations, hidden, exposed)
    for is_margin in (False, True):
        for _, key in sorted(c for tier in tiers for c in tier if (c[1] in margins) == is_margin):
            if exposed not in solvable(relations, rests, {exposed}, hidden | {key}, 0):
                return key
        for tier in tiers:
            nearest = [c for c in tier if (c[1] in margins) == is_margin]
            if nearest:
                return min(nearest)[1]
    return None


def rest_of(counts: Mapping[Key, float], relation: Relation) -> float:
    return counts.get(relation.total, 0) - sum(counts.get(p, 0) for p in relation.parts)


def members(relation: Relation) -> tuple[Key, ...]:
    return (relation.total, *relation.parts)


def tied_counts(
    counts: Mapping[Key, float], relations: Sequence[Relation], hidden: set[Key], exposed: Key
) -> list[list[tuple[float, Key]]]:
    """The non-zero shown counts in the sums holding the exposed one, then in the sums
    holding the withheld counts of those, and so on outwards; one list per step. A rest's
    sum is the one it completes."""
    reached = {exposed}
    seen: set[int] = set()
    tiers: list[list[tuple[float, Key]]] = []
    while True:
        near = [
            i
            for i, r in enumerate(relations)
            if i not in seen and (reached & set(members(r)) or rest_key(i) in reached)
        ]
        if not near:
            return [tier for tier in tiers if tier]
        seen.update(near)
        tied = [k for i in near for k in members(relations[i])]
        tiers.append(
            sorted({(counts[k], k) for k in tied if k not in hidden and counts.get(k, 0) > 0})
        )
        reached.update(k for k in tied if k in hidden)


def rest_key(index: int) -> Key:
    """The unknown standing for what no published figure of relation `index` holds."""
    return ("", str(index))


def solvable(
    relations: Sequence[Relation],
    rests: Sequence[float],
    primary: set[Key],
    hidden: set[Key],
    threshold: int,
) -> list[Key]:
    """The small counts (and small unpublished rests, named by rest_key) that the shown
    counts and the relations determine exactly, though withheld."""
    unknowns: list[Key] = sorted(hidden)
    unknowns += [rest_key(i) for i, rest in enumerate(rests) if rest]
    column = {key: n for n, key in enumerate(unknowns)}
    rows = []
    for i, relation in enumerate(relations):
        row = [Fraction(0)] * len(unknowns)
        for key, sign in ((relation.total, 1), *((p, -1) for p in relation.parts)):
            if key in column:
                row[column[key]] += sign
        if rests[i]:
            row[column[rest_key(i)]] -= 1
        if any(row):
            rows.append(row)
    # An unknown is determined when its unit vector is a combination of the rows: in
    # reduced row echelon form, when a row holds it alone.
    alone = {
        row.index(next(v for v in row if v))
        for row in reduced(rows)
        if sum(1 for v in row if v) == 1
    }
    return [
        key
        for key in unknowns
        if column[key] in alone
        and (key in primary or (not key[0] and small(rests[int(key[1])], threshold)))
    ]


def reduced(rows: Sequence[Sequence[Fraction]]) -> list[list[Fraction]]:
    """Reduced row echelon form by Gaussian elimination, exact (tens of cells at most)."""
    matrix = [list(row) for row in rows]
    found = 0
    width = len(matrix[0]) if matrix else 0
    for col in range(width):
        pivot = next((r for r in range(found, len(matrix)) if matrix[r][col] != 0), None)
        if pivot is None:
            continue
        matrix[found], matrix[pivot] = matrix[pivot], matrix[found]
        lead = matrix[found][col]
        matrix[found] = [v / lead for v in matrix[found]]
        for r in range(len(matrix)):
            if r != found and matrix[r][col] != 0:
                factor = matrix[r][col]
                matrix[r] = [a - factor * b for a, b in zip(matrix[r], matrix[found], strict=True)]
        found += 1
    return matrix[:found]
