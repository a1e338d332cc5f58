"""Who takes part in a simulated territory: drawn once from a seed and a scale.

Only participants are drawn (prevention enrollees, monitored patients, residents of
connected homes, practitioners and places); the rest of the population is a count.
Pseudonyms come from `derive_pseudonym` over a simulation id under a key made from the
seed: they name nobody and are the same for the same seed.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, replace

from emeuse.runtime.pseudonym import derive_pseudonym
from emeuse.simulate.territory import AGE_BANDS, DEPARTEMENTS, SHARES, Commune, Departement

PROGRAMMES = ("diabetes", "heart_failure", "copd", "anticoagulated_ehpad")
PLACE_KINDS = ("ehpad", "pharmacy_cabin", "health_centre")


@dataclass(frozen=True)
class Person:
    pseudonym: str
    territory: str
    commune: Commune
    age_from: int
    age_to: int


@dataclass(frozen=True)
class Place:
    place_id: str
    kind: str
    territory: str
    commune: Commune


@dataclass(frozen=True)
class Practitioner:
    practitioner_id: str
    profession: str  # "GP" or "SPECIALIST"
    territory: str
    commune: Commune


@dataclass(frozen=True)
class Patient:
    person: Person
    programme: str  # one of PROGRAMMES
    gp_id: str
    nurse_id: str
    place_id: str  # the EHPAD of an anticoagulated resident, else ""
    silent: bool  # its devices stop after enrolment: a monitoring gap


@dataclass(frozen=True)
class Home:
    person: Person
    wakes_at: str  # local time HH:MM
    goes_to_bed_at: str


@dataclass(frozen=True)
class Population:
    seed: int
    scale: float
    people: dict[str, int]  # département code -> simulated people (all of them, counted)
    enrollees: tuple[Person, ...]
    patients: tuple[Patient, ...]
    homes: tuple[Home, ...]
    practitioners: tuple[Practitioner, ...]
    places: tuple[Place, ...]


class _Draw:
    """Seeded draws and pseudonyms for one population."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.rng = random.Random(f"emeuse-simulate-population-{seed}")
        self.key = hashlib.sha256(f"emeuse-simulate-key-{seed}".encode()).digest()
        self.serial = 0

    def pseudonym(self) -> str:
        self.serial += 1
        return derive_pseudonym(f"sim-{self.seed}-{self.serial}", self.key)

    def commune(self, departement: Departement) -> Commune:
        return self.rng.choices(departement.communes, cum_weights=departement.cumulative)[0]

    def person(self, departement: Departement, bands: tuple[tuple[int, int, float], ...]) -> Person:
        age_from, age_to, _ = self.rng.choices(bands, [share for *_, share in bands])[0]
        return Person(
            self.pseudonym(), departement.code, self.commune(departement), age_from, age_to
        )


def _count(people: int, share: float, at_least: int = 0) -> int:
    return max(at_least, round(people * share))


def _bands(low: int, high: int = 99) -> tuple[tuple[int, int, float], ...]:
    return tuple(band for band in AGE_BANDS if band[0] >= low and band[1] <= high)


def build_population(seed: int, scale: float, territories: tuple[str, ...] = ()) -> Population:
    """The participants of the chosen départements (all three by default) at this scale."""
    if not 0 < scale <= 1:
        raise ValueError("scale must be above 0 and at most 1 (1 is the real population)")
    draw = _Draw(seed)
    chosen = [d for d in DEPARTEMENTS if not territories or d.code in territories]
    people: dict[str, int] = {}
    enrollees: list[Person] = []
    patients: list[Patient] = []
    homes: list[Home] = []
    practitioners: list[Practitioner] = []
    places: list[Place] = []
    for dep in chosen:
        count = round(dep.population * scale)
        people[dep.code] = count
        for kind in PLACE_KINDS:
            for n in range(_count(count, SHARES[kind], at_least=1)):
                places.append(
                    Place(
                        f"{kind.replace('_', '-')}-{dep.code}-{n + 1:04d}",
                        kind,
                        dep.code,
                        draw.commune(dep),
                    )
                )
        for profession in ("gp", "specialist"):
            for n in range(_count(count, SHARES[profession], at_least=1)):
                practitioners.append(
                    Practitioner(
                        f"{profession}-{dep.code}-{n + 1:04d}",
                        profession.upper(),
                        dep.code,
                        draw.commune(dep),
                    )
                )
        gps = [p for p in practitioners if p.territory == dep.code and p.profession == "GP"]
        ehpads = [p for p in places if p.territory == dep.code and p.kind == "ehpad"]
        enrollees.extend(
            draw.person(dep, _bands(15)) for _ in range(_count(count, SHARES["prevention"]))
        )
        for programme in PROGRAMMES:
            bands = _bands(75) if programme == "anticoagulated_ehpad" else _bands(30)
            for _ in range(_count(count, SHARES[programme])):
                patients.append(
                    Patient(
                        person=draw.person(dep, bands),
                        programme=programme,
                        gp_id=draw.rng.choice(gps).practitioner_id,
                        nurse_id=f"ide-{dep.code}-{draw.rng.randrange(1, 10_000):04d}",
                        place_id=draw.rng.choice(ehpads).place_id
                        if programme == "anticoagulated_ehpad"
                        else "",
                        silent=False,
                    )
                )
        over_75 = count * sum(share for low, _, share in AGE_BANDS if low >= 75)
        for _ in range(_count(round(over_75), SHARES["home"])):
            wakes = f"{draw.rng.randint(6, 8):02d}:{draw.rng.choice((0, 15, 30, 45)):02d}"
            bed = f"{draw.rng.randint(21, 22):02d}:{draw.rng.choice((0, 15, 30, 45)):02d}"
            homes.append(Home(draw.person(dep, _bands(75)), wakes, bed))
    return Population(
        seed,
        scale,
        people,
        tuple(enrollees),
        tuple(patients),
        tuple(homes),
        tuple(practitioners),
        tuple(places),
    )


def silence(population: Population, share: float, seed: int) -> Population:
    """The same population with `share` of its patients' devices going silent."""
    rng = random.Random(f"emeuse-simulate-silence-{seed}")
    patients = tuple(replace(p, silent=rng.random() < share) for p in population.patients)
    return replace(population, patients=patients)
