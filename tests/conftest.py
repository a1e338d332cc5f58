"""Every test process runs on loopback in plaintext, chosen here explicitly: the platform's
default is mutual TLS and SASL_SSL (docs/security.md), which tests that need it set for
themselves (tests/integration/test_encryption.py). scripts/test.sh exports the same
(scripts/broker-env.sh); this covers pytest run alone (make test-unit)."""

import os

from emeuse.runtime.security import LOOPBACK_PLAINTEXT

for _name, _value in {
    **LOOPBACK_PLAINTEXT,
    "EMEUSE_KAFKA_PARTNER_PROTOCOL": "SASL_PLAINTEXT",
}.items():
    os.environ.setdefault(_name, _value)
