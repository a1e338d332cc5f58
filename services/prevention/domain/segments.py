"""Who a campaign, or one of its audiences, is for."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel, Field


class Segment(BaseModel):
    """Age, territory and attribute conditions; each one set must hold.

    An age condition holds when the person's whole age band lies inside it: a person in
    band 20-29 is not known to be within 15-25, so a campaign for 15-25 does not reach them.
    """

    age_from: int = 0
    age_to: int = 0
    territories: list[str] = Field(default_factory=list)
    attributes: list[str] = Field(default_factory=list)


@dataclass(frozen=True)
class Person:
    """What targeting knows of a person."""

    age_from: int
    age_to: int
    territory: str
    attributes: frozenset[str] = frozenset()


def check_segment(segment: Segment) -> None:
    if segment.age_to and not 0 <= segment.age_from <= segment.age_to <= 120:
        raise ValueError("segment ages must satisfy 0 <= age_from <= age_to <= 120")
    if not segment.age_to and segment.age_from:
        raise ValueError("segment age_from needs age_to")


def matches(segment: Segment, person: Person) -> bool:
    if segment.age_to and not (
        segment.age_from <= person.age_from and person.age_to <= segment.age_to
    ):
        return False
    if segment.territories and person.territory not in segment.territories:
        return False
    return set(segment.attributes) <= person.attributes
