"""`emeuse deploy render [--check]`: the Kubernetes manifests, generated from the registries
(emeuse.deploy.render), so topics, partner users and certificates and services never drift
from the code."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from emeuse.cli.errors import CliError
from emeuse.deploy.cluster_file import ClusterFileError, read_cluster
from emeuse.deploy.render import (
    CLUSTER_FILE,
    OUTPUT,
    PARTNERS_FILE,
    PartnersFileError,
    differences,
    read_partner_entries,
    render,
    write,
)


def add_deploy_command(commands: Any) -> None:
    deploy = commands.add_parser("deploy", help="render the Kubernetes manifests (deploy/k8s)")
    deploy.add_argument("action", choices=["render"])
    deploy.add_argument(
        "--check",
        action="store_true",
        help="write nothing; fail when the committed files differ from a render",
    )
    deploy.add_argument("--output", type=Path, default=OUTPUT, help="default: deploy/k8s")
    deploy.add_argument(
        "--partners", type=Path, default=PARTNERS_FILE, help="default: deploy/partners.toml"
    )
    deploy.add_argument(
        "--cluster", type=Path, default=CLUSTER_FILE, help="default: deploy/cluster.toml"
    )


def cmd_deploy(args: argparse.Namespace) -> int:
    try:
        entries = read_partner_entries(args.partners)
        cluster = read_cluster(args.cluster)
    except (PartnersFileError, ClusterFileError) as exc:
        raise CliError(str(exc)) from None
    rendered = render(
        partner_ids=[entry.id for entry in entries],
        grpc_partners=[entry.id for entry in entries if entry.grpc],
        external_names=cluster.external_names,
    )
    if args.check:
        changed, extra = differences(rendered, args.output)
        if changed or extra:
            raise CliError(
                f"{args.output} differs from a render ({', '.join(changed + extra)}): "
                "run `emeuse deploy render` and commit the result"
            )
        print(f"{args.output}: up to date ({len(rendered.files)} files)")
        return 0
    try:
        written = write(rendered, args.output)
    except OSError as exc:
        raise CliError(f"cannot write {args.output}: {exc.strerror}") from None
    print(f"{args.output}: wrote {len(written)} files")
    return 0
