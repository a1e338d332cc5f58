"""The Dockerfile, read statically (no Docker engine needed): a pinned base, a non-root user,
only the venv in the final image, no secret copied in, health left to the probes."""

import re
from pathlib import Path

import yaml

from emeuse.deploy.render import OUTPUT
from emeuse.registry import SERVICES

ROOT = Path(__file__).resolve().parents[3]
SECRET_LIKE = re.compile(r"\.local|secret|token|\.properties|\.pem|\.key|\.env\b", re.I)


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments), continuation lines joined, comments dropped."""
    joined = re.sub(r"\\\n", " ", text)
    found = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            found.append((keyword.upper(), rest.strip()))
    return found


DOCKERFILE = instructions((ROOT / "Dockerfile").read_text())


def stages() -> list[list[tuple[str, str]]]:
    split: list[list[tuple[str, str]]] = []
    for keyword, rest in DOCKERFILE:
        if keyword == "FROM":
            split.append([])
        if split:
            split[-1].append((keyword, rest))
    return split


def test_every_base_image_is_pinned_by_a_digest_with_no_default():
    args = dict(rest.partition("=")[::2] for keyword, rest in DOCKERFILE if keyword == "ARG")
    assert args.get("BASE_DIGEST") == "", "BASE_DIGEST must have no default"
    froms = [rest.split()[0] for keyword, rest in DOCKERFILE if keyword == "FROM"]
    assert len(froms) >= 2, "multi-stage: build, then a runtime with the venv only"
    for image in froms:
        assert image.endswith("@${BASE_DIGEST}") or re.search(r"@sha256:[0-9a-f]{64}$", image)


def test_the_final_stage_runs_as_the_non_root_user_the_pods_name():
    final = stages()[-1]
    users = [rest for keyword, rest in final if keyword == "USER"]
    assert users, "the runtime stage sets USER"
    uid = users[-1].split(":")[0]
    assert uid not in ("0", "root")
    for service in SERVICES:
        docs = yaml.safe_load_all((OUTPUT / "base" / f"{service}.yaml").read_text())
        pod = next(d for d in docs if d["kind"] == "StatefulSet")["spec"]["template"]["spec"]
        assert str(pod["securityContext"]["runAsUser"]) == uid
        assert pod["securityContext"]["runAsNonRoot"] is True


def test_the_final_stage_copies_only_the_venv_from_the_build():
    copies = [rest for keyword, rest in stages()[-1] if keyword in ("COPY", "ADD")]
    assert copies == ["--from=build /opt/emeuse /opt/emeuse"]


def test_no_secret_is_copied_and_the_build_context_leaves_them_out():
    for keyword, rest in DOCKERFILE:
        assert keyword != "ADD", "ADD can fetch URLs and unpack archives: COPY only"
        if keyword == "COPY":
            assert not SECRET_LIKE.search(rest), rest
    ignored = (ROOT / ".dockerignore").read_text().splitlines()
    assert "*" in ignored, "the context starts from nothing (*)"
    allowed = [line[1:] for line in ignored if line.startswith("!")]
    assert allowed and not any(SECRET_LIKE.search(path) for path in allowed)
    assert "**/.local" in ignored


def test_health_is_left_to_the_probes_of_each_service():
    assert ("HEALTHCHECK", "NONE") in DOCKERFILE
    for service in SERVICES:
        docs = yaml.safe_load_all((OUTPUT / "base" / f"{service}.yaml").read_text())
        sts = next(d for d in docs if d["kind"] == "StatefulSet")
        container = sts["spec"]["template"]["spec"]["containers"][0]
        assert {"startupProbe", "readinessProbe", "livenessProbe"} <= set(container)
        assert container["args"] == ["python", "-m", f"services.{service}"]
