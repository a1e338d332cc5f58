"""The three départements as the simulation draws them: population, communes, age bands.

Figures are rounded public orders of magnitude (INSEE populations, 2021), not statistics
to quote. The communes are a small table of real ones (INSEE code, approximate centre),
weighted by their population: every simulated person lives in one of them, which
concentrates people in towns. The age bands are one national-like split used for all
three départements.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Commune:
    insee: str
    name: str
    population: int
    latitude: float
    longitude: float


@dataclass(frozen=True)
class Departement:
    code: str
    name: str
    population: int
    communes: tuple[Commune, ...]


DEPARTEMENTS = (
    Departement(
        "55",
        "Meuse",
        184_000,
        (
            Commune("55545", "Verdun", 16_000, 49.16, 5.38),
            Commune("55029", "Bar-le-Duc", 15_000, 48.77, 5.16),
            Commune("55122", "Commercy", 5_600, 48.76, 5.59),
            Commune("55463", "Saint-Mihiel", 4_000, 48.89, 5.54),
            Commune("55502", "Stenay", 2_600, 49.49, 5.19),
        ),
    ),
    Departement(
        "52",
        "Haute-Marne",
        172_000,
        (
            Commune("52448", "Saint-Dizier", 23_000, 48.64, 4.95),
            Commune("52121", "Chaumont", 22_000, 48.11, 5.14),
            Commune("52269", "Langres", 7_500, 47.86, 5.33),
        ),
    ),
    Departement(
        "54",
        "Meurthe-et-Moselle",
        733_000,
        (
            Commune("54395", "Nancy", 104_000, 48.69, 6.18),
            Commune("54547", "Vandœuvre-lès-Nancy", 29_000, 48.66, 6.17),
            Commune("54329", "Lunéville", 18_000, 48.59, 6.50),
            Commune("54528", "Toul", 15_500, 48.68, 5.89),
            Commune("54323", "Longwy", 15_000, 49.52, 5.76),
            Commune("54431", "Pont-à-Mousson", 14_500, 48.90, 6.05),
        ),
    ),
)

# (from, to inclusive, share of the population)
AGE_BANDS = (
    (0, 14, 0.16),
    (15, 29, 0.15),
    (30, 44, 0.17),
    (45, 59, 0.20),
    (60, 74, 0.19),
    (75, 99, 0.13),
)

# Who takes part, per person of the territory (or of the band named). Rough, chosen so a
# 1 % demo has a few hundred participants: diabetes affects ~6 % of people, and one in ten
# of them under remote monitoring gives 0.6 %.
SHARES = {
    "prevention": 0.02,  # people enrolled in the prevention service (any age from 15)
    "diabetes": 0.004,
    "heart_failure": 0.002,
    "copd": 0.001,
    "anticoagulated_ehpad": 0.001,  # EHPAD residents on vitamin K antagonists (INR)
    "home": 0.02,  # of people aged 75+: a connected home
    "gp": 0.0002,  # GPs offering teleconsultation
    "specialist": 0.00005,
    "ehpad": 0.0002,
    "pharmacy_cabin": 0.00005,
    "health_centre": 0.0001,
    "pregnancy": 0.05,  # of prevention enrollees aged 15-44: a pregnancy programme
}


def by_code(code: str) -> Departement:
    for departement in DEPARTEMENTS:
        if departement.code == code:
            return departement
    raise ValueError(f"territory {code!r} is not a programme département (52, 54 or 55)")
