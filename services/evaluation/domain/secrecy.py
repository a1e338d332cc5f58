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
   withhold the smallest non-zero shown count of a relation holding it ("the next
   smallest cell", so as little as possible is lost).

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
    primary = {key for key, value in counts.items() if small(value, threshold)}
    rests = [rest_of(counts, r) for r in relations]
    hidden = set(primary)
    while True:
        choices = (
            next_smallest(counts, relations, hidden, exposed)
            for exposed in solvable(relations, rests, primary, hidden, threshold)
        )
        choice = next(filter(None, choices), None)
        if choice is None:
            # None exposed, or every count tied to the exposed ones withheld or zero.
            return hidden
        hidden.add(choice)


def rest_of(counts: Mapping[Key, float], relation: Relation) -> float:
    return counts.get(relation.total, 0) - sum(counts.get(p, 0) for p in relation.parts)


def members(relation: Relation) -> tuple[Key, ...]:
    return (relation.total, *relation.parts)


def next_smallest(
    counts: Mapping[Key, float], relations: Sequence[Relation], hidden: set[Key], exposed: Key
) -> Key | None:
    """The smallest non-zero shown count in a relation with the exposed one (ties: name);
    when all of those are withheld or zero, in the relations those withheld ones are in,
    and so on outwards. A rest's relation is the one it completes."""
    reached = {exposed}
    seen: set[int] = set()
    while True:
        near = [
            i
            for i, r in enumerate(relations)
            if i not in seen and (reached & set(members(r)) or rest_key(i) in reached)
        ]
        if not near:
            return None
        seen.update(near)
        tied = [k for i in near for k in members(relations[i])]
        candidates = [(counts[k], k) for k in tied if k not in hidden and counts.get(k, 0) > 0]
        if candidates:
            return min(candidates)[1]
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
    base = rank(rows)
    exposed = []
    for key in unknowns:
        if key in primary or (not key[0] and small(rests[int(key[1])], threshold)):
            unit = [Fraction(int(n == column[key])) for n in range(len(unknowns))]
            if rank([*rows, unit]) == base:
                exposed.append(key)
    return exposed


def rank(rows: Sequence[Sequence[Fraction]]) -> int:
    """Rank by Gaussian elimination, exact (the tables are tens of cells)."""
    matrix = [list(row) for row in rows]
    found = 0
    width = len(matrix[0]) if matrix else 0
    for col in range(width):
        pivot = next((r for r in range(found, len(matrix)) if matrix[r][col] != 0), None)
        if pivot is None:
            continue
        matrix[found], matrix[pivot] = matrix[pivot], matrix[found]
        for r in range(len(matrix)):
            if r != found and matrix[r][col] != 0:
                factor = matrix[r][col] / matrix[found][col]
                matrix[r] = [a - factor * b for a, b in zip(matrix[r], matrix[found], strict=True)]
        found += 1
    return found
