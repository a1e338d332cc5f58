"""The one detector of direct identifiers: what names a person outright.

Used wherever a value enters or leaves the platform (id fields of gRPC requests, Kafka
inputs, partner inbound, FHIR) and by the test scan of every topic and log. Pure functions
over text; tuned so the platform's own ids (uuids, `psn-...`, `ide-0107`, `cp-...`, LOINC
codes, `fhir:...`) are never taken for a person.
"""

from __future__ import annotations

import re

EMAIL = "e-mail address"
PHONE = "French phone number"
NIR = "NIR (social security number)"
INS_OID = "INS identifier (INS OID)"
ADDRESS = "postal address"
NAME = "name-shaped value"

# Kinds in the order a reason names them: the most certain first.
KINDS = (INS_OID, NIR, EMAIL, PHONE, ADDRESS, NAME)

# No letter or digit right before or after: a run inside a longer id is not a number.
_ALONE_BEFORE = r"(?<![A-Za-z0-9])"
_ALONE_AFTER = r"(?![A-Za-z0-9])"

# Found from its @ (a search from every letter of a long text would be quadratic).
_EMAIL = re.compile(r"@[A-Za-z0-9\-]{1,63}(?:\.[A-Za-z0-9\-]{1,63})*\.[A-Za-z]{2,24}(?![A-Za-z])")
_EMAIL_LOCAL = re.compile(r"[A-Za-z0-9._%+\-]$")
# 0X XX XX XX XX or +33 / 0033 X XX XX XX XX, pairs of digits grouped by one separator
# throughout (space, dot or hyphen): a uuid's 4-digit groups are not a phone number.
_PHONE = re.compile(
    _ALONE_BEFORE + r"(?:(?:\+|00)33[ .\-]?(?:\(0\)[ .\-]?)?|0)[1-9]([ .\-]?)[0-9]{2}"
    r"(?:\1[0-9]{2}){3}" + _ALONE_AFTER
)
# Sex, year, month, département (2A/2B in Corsica), commune, order, key: 15 characters,
# optionally grouped by spaces, dots or hyphens.
_NIR = re.compile(
    _ALONE_BEFORE + r"([1-478])[ .\-]?([0-9]{2})[ .\-]?([0-9]{2})[ .\-]?([0-9]{2}|2[AaBb])"
    r"[ .\-]?([0-9]{3})[ .\-]?([0-9]{3})[ .\-]?([0-9]{2})" + _ALONE_AFTER
)
# INS-NIR, INS-NIA and the test INS-NIR OIDs of the Agence du numérique en santé.
_INS_OID = re.compile(r"(?<![0-9.])1\.2\.250\.1\.213\.1\.4\.(?:8|10|11)(?![0-9])")
_STREET_WORDS = (
    "rue|avenue|av|bd|boulevard|place|pl|chemin|route|rte|impasse|allée|allee|quai|cours|"
    "square|faubourg|fbg|lieu-dit|lotissement|résidence|residence|voie|sentier|passage|"
    "ruelle|esplanade|promenade|hameau|cité|cite"
)
_STREET = re.compile(
    _ALONE_BEFORE + r"[0-9]{1,4}(?: ?(?:bis|ter|[A-Da-d]))?,? +(?:" + _STREET_WORDS + r")"
    r"(?![A-Za-z0-9])",
    re.IGNORECASE,
)
_POSTCODE_TOWN = re.compile(_ALONE_BEFORE + r"(?:0[1-9]|[1-8][0-9]|9[0-8]|2[AB])[0-9]{3} +[A-ZÀ-Ý]")
_UPPER = "A-ZÀ-ÖØ-Ý"
_LOWER = "a-zß-öø-ÿ"
_WORD = rf"[{_UPPER}][{_LOWER}]+(?:[\-'\u2019][{_UPPER}][{_LOWER}]+)?"
_TITLE = r"(?:M\.|Mme|Mlle|Mr|Dr|Pr)"
# Two or more capitalised words ("Jean Dupont", "Marie-Claire Martin"), a title and a
# capitalised word ("Mme Dupont"), or a surname in capitals before a first name.
_NAME = re.compile(
    rf"(?<![{_UPPER}{_LOWER}0-9])(?:{_WORD}(?: +{_WORD})+|{_TITLE} +[{_UPPER}][{_LOWER}{_UPPER}]+"
    rf"|[{_UPPER}]{{2,}} +{_WORD})(?![{_UPPER}{_LOWER}0-9])"
)


def nir_key_is_valid(digits: str, key: str) -> bool:
    """The NIR's key is 97 - (the 13 characters mod 97), Corsica's 2A/2B read as 19/18."""
    number = digits.upper().replace("2A", "19", 1) if digits[5:7].upper() == "2A" else digits
    number = number.upper().replace("2B", "18", 1) if digits[5:7].upper() == "2B" else number
    if not number.isdigit():
        return False
    return 97 - int(number) % 97 == int(key)


def _has_nir(text: str) -> bool:
    for match in _NIR.finditer(text):
        *parts, key = match.groups()
        month = int(parts[2])
        if not (1 <= month <= 12 or 20 <= month <= 42 or 50 <= month <= 99):
            continue
        if nir_key_is_valid("".join(parts), key):
            return True
    return False


def _has_email(text: str) -> bool:
    return any(_EMAIL_LOCAL.search(text, 0, m.start()) for m in _EMAIL.finditer(text))


def _has_address(text: str) -> bool:
    return bool(_STREET.search(text) or _POSTCODE_TOWN.search(text))


_CHECKS = {
    INS_OID: lambda text: bool(_INS_OID.search(text)),
    NIR: _has_nir,
    EMAIL: _has_email,
    PHONE: lambda text: bool(_PHONE.search(text)),
    ADDRESS: _has_address,
    NAME: lambda text: bool(_NAME.search(text)),
}


def identifier_kinds(text: str) -> list[str]:
    """Every kind of direct identifier found in `text`, most certain first."""
    return [kind for kind in KINDS if _CHECKS[kind](text)]


def identifier_kind(text: str) -> str | None:
    """The most certain kind of direct identifier in `text`, or None when it names nobody."""
    for kind in KINDS:
        if _CHECKS[kind](text):
            return kind
    return None
