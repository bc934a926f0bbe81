"""Identifying fields (JSON keys, CSV columns, form field names, JSON-LD properties):
which names hold a person's name, birth date, address, telephone number, e-mail
address or identifier, and which hold narrative text.
"""

from __future__ import annotations

import re

from radbank.semantic.vocabulary import DCT, FOAF, QUDT, RB, RDFS, SKOS

_IDENTIFYING_WORDS = frozenset(
    """
    name names surname surnames forename forenames firstname lastname givenname familyname
    maidenname middlename fullname initials nickname address addresses street postcode
    postalcode zip zipcode city town phone phones telephone mobile fax email mail ssn nhs
    mrn passport insurance birthdate birthday birthplace dob
    """.split()  # noqa: SIM905 - a word list reads as a paragraph
)
_IDENTIFYING_NAMES = frozenset(
    """
    dateofbirth placeofbirth patientid subjectid otherpatientids medicalrecordnumber
    recordnumber hospitalnumber accessionnumber socialsecuritynumber nationalid
    nationalidentifier insurancenumber healthinsurancenumber trialsubjectid emailaddress
    """.split()  # noqa: SIM905
)
# "<word>_name" names a thing, not a person.
_THING_NAMES = frozenset(
    """
    drug medication medicine regimen protocol organ region structure lesion questionnaire
    instrument scale test field study trial device product agent compound isotope
    radionuclide radiopharmaceutical tracer sequence series file form visit code unit
    """.split()  # noqa: SIM905
)


def _words(name: str) -> list[str]:
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", name)
    return [w for w in re.split(r"[^a-z0-9]+", spaced.lower()) if w]


def _is_identifying(name: str) -> bool:
    """Whether a field named `name` holds a person's name, birth date, address, telephone
    number, e-mail address or identifier (what DICOM removes from the Patient module)."""
    words = _words(name)
    if "".join(words) in _IDENTIFYING_NAMES:
        return True
    for position, word in enumerate(words):
        if word in ("name", "names") and position > 0 and words[position - 1] in _THING_NAMES:
            continue
        if word in _IDENTIFYING_WORDS:
            return True
    joined = "".join(words)
    return any(part in joined for part in ("dateofbirth", "birthdate", "emailaddress"))


# A form field or an outcome value named like one of these is narrative.
_NARRATIVE_WORDS = frozenset(
    """
    comment comments note notes remark remarks description history narrative text freetext
    details summary observation observations free
    """.split()  # noqa: SIM905 - a word list reads as a paragraph
)

_FOAF_IDENTIFYING = """
    name givenName familyName firstName lastName surname family_name givenname nick birthday
    mbox mbox_sha1sum phone homepage title
""".split()  # noqa: SIM905
_SCHEMA_IDENTIFYING = """
    name givenName familyName additionalName birthDate birthPlace address telephone email faxNumber taxID identifier
""".split()  # noqa: SIM905
_IDENTIFYING_PREDICATES = frozenset(
    [FOAF + name for name in _FOAF_IDENTIFYING]
    + [
        f"{scheme}://schema.org/{name}"
        for scheme in ("http", "https")
        for name in _SCHEMA_IDENTIFYING
    ]
    + [DCT + "identifier"]
)
_IDENTIFYING_NAMESPACES = ("http://www.w3.org/2006/vcard/ns#",)
_NARRATIVE_PREDICATES = frozenset({RDFS + "comment", DCT + "description", SKOS + "note"})
_UNCLEANED_PREDICATES = frozenset({QUDT + "ucumCode", RB + "fieldName"})
_VALUE_PREDICATES = frozenset({RB + "fieldValue", RB + "observedValue"})


def _is_identifying_predicate(predicate: str) -> bool:
    return predicate in _IDENTIFYING_PREDICATES or predicate.startswith(_IDENTIFYING_NAMESPACES)
