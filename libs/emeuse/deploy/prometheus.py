"""The local Prometheus's configuration: one job per service of the registry, scraped over
HTTPS with the local CA and Prometheus's own certificate wherever the services serve
/metrics over TLS (EMEUSE_METRICS_TLS, as gRPC unless set), plain HTTP where they do not.

    python -m emeuse.deploy.prometheus --out FILE   what `make up` runs (deploy/local/platform.sh):
                                                    the environment's choice, absolute paths
    python -m emeuse.deploy.prometheus --write      deploy/prometheus/prometheus.yml: the
                                                    default's render (--check compares: make lint)

Each job names the service it scrapes (`server_name`): every certificate holds 127.0.0.1,
so without it any service's certificate would pass for another's.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path

from emeuse.registry import SERVICES
from emeuse.runtime.security import SCRAPER, TLS_DIR, GrpcTls, load_metrics_tls
from emeuse.runtime.setting import SettingsError
from emeuse.runtime.settings import DEFAULT_PORTS

ROOT = Path(__file__).resolve().parents[3]
RULES_DIR = ROOT / "deploy" / "prometheus"
COMMITTED = RULES_DIR / "prometheus.yml"
RULE_FILES = ("rules.yml", "operations_rules.yml")
# The axis label dashboards group by; a service's own name unless said here.
AXIS = {"gateway": "partners"}
# The committed file's certificates, relative to its folder (Prometheus reads them so).
COMMITTED_TLS = GrpcTls(
    "mtls",
    Path(f"../../{TLS_DIR}/ca.crt"),
    Path(f"../../{TLS_DIR}/{SCRAPER}.crt"),
    Path(f"../../{TLS_DIR}/{SCRAPER}.key"),
)
HEADER = """\
# Prometheus for the local platform (`make up`): scrapes each service's /metrics.
# Rendered by `python -m emeuse.deploy.prometheus`; this file is the default (mutual TLS with
# the files scripts/certs.sh makes under .local/secrets/tls). `make up` renders its own into
# .local/run/prometheus.yml from the same code, for the environment's EMEUSE_METRICS_TLS.
# In a cluster, replace static_configs with service discovery; job names stay the same.
"""


def _quoted(path: Path) -> str:
    return json.dumps(os.fspath(path))


def _tls_config(tls: GrpcTls, service: str) -> list[str]:
    assert tls.ca_file
    lines = ["    tls_config:", f"      ca_file: {_quoted(tls.ca_file)}"]
    if tls.mutual:
        assert tls.cert_file and tls.key_file
        lines.append(f"      cert_file: {_quoted(tls.cert_file)}")
        lines.append(f"      key_file: {_quoted(tls.key_file)}")
    lines.append(f"      server_name: {service}")
    return lines


def render(
    tls: GrpcTls,
    rules_dir: Path = Path("."),
    targets: Mapping[str, str] | None = None,
    interval: str = "5s",
) -> str:
    """The configuration scraping each service (`targets`: service -> host:port, by default
    every service on its default port) as `tls` says, its files as given."""
    if targets is None:
        targets = {service: f"127.0.0.1:{DEFAULT_PORTS[service][1]}" for service in SERVICES}
    lines = [
        HEADER.rstrip("\n"),
        "global:",
        f"  scrape_interval: {interval}",
        f"  evaluation_interval: {interval}",
        "",
        "rule_files:",
        *(f"  - {_quoted(rules_dir / name)}" for name in RULE_FILES),
        "",
        "scrape_configs:",
    ]
    for service, target in targets.items():
        lines.append(f"  - job_name: {service}")
        if tls.on:
            lines.append("    scheme: https")
            lines.extend(_tls_config(tls, service))
        axis = AXIS.get(service, service)
        lines.append(
            f'    static_configs: [{{ targets: ["{target}"], labels: {{ axis: {axis} }} }}]'
        )
    return "\n".join(lines) + "\n"


def render_committed() -> str:
    return render(COMMITTED_TLS)


def render_for(env: Mapping[str, str]) -> str:
    """What `make up` gives Prometheus: the environment's choice, paths made absolute (the
    file lives under .local/run, the rules stay in deploy/prometheus)."""
    tls = load_metrics_tls(SCRAPER, env)
    if tls.on:
        assert tls.ca_file and tls.cert_file and tls.key_file
        tls = GrpcTls(
            tls.mode, tls.ca_file.resolve(), tls.cert_file.resolve(), tls.key_file.resolve()
        )
    return render(tls, RULES_DIR)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m emeuse.deploy.prometheus")
    parser.add_argument("--out", type=Path, help="write the environment's configuration here")
    parser.add_argument("--write", action="store_true", help="render the committed file")
    parser.add_argument("--check", action="store_true", help="compare the committed file")
    args = parser.parse_args(argv)
    if args.write:
        COMMITTED.write_text(render_committed(), encoding="utf-8")
        return 0
    if args.check:
        if COMMITTED.read_text(encoding="utf-8") != render_committed():
            print(
                f"{COMMITTED} differs from its render: python -m emeuse.deploy.prometheus --write",
                file=sys.stderr,
            )
            return 1
        return 0
    try:
        text = render_for(os.environ)
    except SettingsError as exc:
        print(f"emeuse: bad setting: {exc}", file=sys.stderr)
        return 2
    if args.out is None:
        sys.stdout.write(text)
    else:
        args.out.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
