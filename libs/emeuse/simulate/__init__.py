"""A synthetic territory for demos, load and evaluation (`emeuse simulate`).

`territory` holds the départements' figures, `population` draws who takes part,
`setup` the enrolments they need (gRPC), `stream` the live events (Kafka) with their
anomalies; all four are pure and seeded. `send` puts them on the platform.
"""
