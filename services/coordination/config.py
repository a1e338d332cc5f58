"""Coordination service settings; the only reader of os.environ for this service."""

import os

from emeuse.runtime.settings import ServiceSettings, load_settings


def load() -> ServiceSettings:
    return load_settings("coordination", os.environ)
