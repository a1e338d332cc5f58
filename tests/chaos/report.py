"""The table a round prints: outputs expected / lost / duplicated, inputs never processed,
and each fault's recovery."""

from __future__ import annotations

from tests.chaos.round import RoundReport


def table(report: RoundReport) -> str:
    lines = [
        f"== round seed={report.seed} service={report.service} group={report.app_id} "
        f"({report.seconds:.0f} s) {'PASS' if report.ok else 'FAIL'}",
        *(f"   {note}" for note in report.notes),
        f"   inputs produced: {report.produced}, produce failures: {report.produce_failures}",
        "",
        f"   {'outputs':<44}{'expected':>9}{'seen':>7}{'lost':>6}{'dup id':>8}"
        f"{'dup meaning':>13}{'unexpected':>12}",
    ]
    for row in report.rows:
        lines.append(
            f"   {row.what:<44}{row.expected:>9}{row.seen:>7}{row.lost:>6}{row.dup_by_id:>8}"
            f"{row.dup_by_meaning:>13}{row.unexpected:>12}"
        )
    unprocessed = sum(report.unprocessed.values())
    lines.append(f"   inputs never processed: {unprocessed}")
    for tp, n in sorted(report.unprocessed.items()):
        lines.append(f"     {tp.topic}[{tp.partition}]: {n}")
    if report.unreadable_outputs:
        lines.append("   outputs no Kafka reader can decode:")
        lines += [f"     {place}" for place in report.unreadable_outputs]
    if report.crashes:
        lines.append(
            "   instances that exited on their own (restarted by the supervisor): "
            + ", ".join(f"{name} {codes}" for name, codes in report.crashes.items())
        )
    lines += [
        "",
        f"   {'#':>3} {'at':<9}{'fault':<15}{'target':<44}{'back':>8}{'recovery':>10}  detail",
    ]
    for n, fault in enumerate(report.faults, 1):
        lines.append(
            f"   {n:>3} {fault.wall:<9}{fault.kind:<15}{fault.target:<44}{_s(fault.back_s):>8}"
            f"{_s(fault.recovery_s, 'NEVER'):>10}  {fault.detail}"
            + "".join(f"; {note}" for note in fault.notes)
        )
    lines.append(
        "   back: the restarted/new instance answers gRPC health SERVING (broker: answers "
        "again); recovery: on every partition the group committed a record that arrived after "
        "the fault (poison: its partition's commit passed it); sampled every 0.5 s."
    )
    return "\n".join(lines)


def _s(seconds: float | None, none: str = "-") -> str:
    return none if seconds is None else f"{seconds:.1f}s"
