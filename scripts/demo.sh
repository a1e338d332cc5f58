#!/usr/bin/env bash
# make demo: a short simulated Meuse on the platform `make up` runs, then where to look.
# DEMO_ARGS adds or overrides `emeuse simulate` options, e.g. DEMO_ARGS="--seed 2 --scale 0.02".
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
emeuse=.venv/bin/emeuse
status=0

# About 1,200 live events in a minute, then 40 s for care teams to answer (they have 30 s)
# and for unanswered alerts to escalate. Critical readings, falls and unanswered alerts are
# more frequent than the defaults, so a minute shows each of them.
# shellcheck disable=SC2086  # DEMO_ARGS is a list of options
"$emeuse" simulate --seed 1 --scale 0.01 --territory 55 --rate 20 --duration 60 \
  --acknowledge-within 30 --linger 40 --critical-rate 0.05 --fall-rate 0.01 \
  --acknowledged-share 0.6 --visit-missed-after 30 --experiment demo ${DEMO_ARGS:-} || status=$?

prom="http://127.0.0.1:9090/graph?g0.expr=sum%20by%20(service%2C%20topic)%20(increase(emeuse_events_produced_total%5B10m%5D))&g0.tab=1"
cat <<TEXT

Where to look (each command prints what the platform made of the simulation):
  $emeuse tail emeuse.chronic.alert-raised.v1 --from-beginning --timeout 5       alerts raised
  $emeuse tail emeuse.chronic.alert-escalated.v1 --from-beginning --timeout 5    alerts nobody took in time
  $emeuse tail emeuse.chronic.alert-acknowledged.v1 --from-beginning --timeout 5 alerts taken in hand
  $emeuse tail emeuse.access.slot-booked.v1 --from-beginning --timeout 5         consultations booked after critical alerts
  $emeuse tail emeuse.access.consultation-status-changed.v1 --from-beginning --timeout 5  completed or missed (no-show)
  $emeuse partner list                                                           the simulated partners (their readings: ce_source partner/...)
  $emeuse tail emeuse.home.incident-raised.v1 --from-beginning --timeout 5       falls, panic, night wandering, missed visits
  $emeuse tail emeuse.prevention.message-scheduled.v1 --from-beginning --timeout 5  reminders and campaign messages
  $emeuse tail emeuse.chronic.dead-letter.v1 --from-beginning --timeout 5        malformed readings set aside, with their reason
Prometheus (events produced per service and topic, last 10 min): $prom
Again with other draws: make demo DEMO_ARGS="--seed 2"; everything stops with: make down
TEXT
exit "$status"
