"""One environment variable a service or tool reads: declared once, documented, read through
its declaration (emeuse.runtime.settings lists them). Apart from settings.py so that the
modules declaring their own settings (security.py) need not import every service setting."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


class SettingsError(ValueError):
    """A setting with a value the service cannot run with; the message names the variable."""


@dataclass(frozen=True)
class Setting:
    """One environment variable. `name` holds `<SERVICE>` when each service has its own;
    `default` is what the docs show, and what `read` uses unless given another."""

    name: str
    default: str
    meaning: str

    def variable(self, service: str = "") -> str:
        return self.name.replace("<SERVICE>", service.upper())

    def read(
        self, env: Mapping[str, str], service: str = "", default: str | None = None
    ) -> tuple[str, str]:
        """(variable, value): the value set, or the default when unset or blank."""
        name = self.variable(service)
        value = env.get(name, "").strip()
        return name, value or (self.default if default is None else default)
