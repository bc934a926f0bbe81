"""Units as vendors write them: UCUM codes, and the near-UCUM spellings of real files."""

from __future__ import annotations

import pytest
from pytest import approx

from radbank.dicom.dose.units import UnitError, convert, parse


@pytest.mark.parametrize(
    ("value", "unit", "target", "expected"),
    [
        (11.013, "dGy.cm2", "Gy.m2", 1.1013e-4),  # header DAP
        (11.013, "dGy*cm*cm", "Gy.m2", 1.1013e-4),  # as PS3.3 writes it
        (250.0, "cGy.cm2", "Gy.m2", 2.5e-4),
        (1.6e-5, "Gym2", "Gy.m2", 1.6e-5),  # Siemens Artis
        (724.52, "mGycm", "mGy.cm", 724.52),  # Siemens, GE
        (0.00252, "Gy", "mGy", 2.52),
        (9586.0, "uAs", "mA.s", 9.586),
        (4500.0, "uA.s", "mA.s", 4.5),
        (100.8, "ms", "s", 0.1008),
        (2.0, "min", "s", 120.0),
        (10.0, "mCi", "MBq", 370.0),
        (370000000.0, "Bq", "MBq", 370.0),
        (120.0, "kVp", "kV", 120.0),
        (3.0, "{events}", "{events}", 3.0),
    ],
)
def test_conversions(value: float, unit: str, target: str, expected: float) -> None:
    assert convert(value, unit, target) == approx(expected, rel=1e-12)


def test_near_ucum_spellings_are_told_apart_from_ucum() -> None:
    assert parse("mGy.cm").is_ucum
    assert not parse("mGycm").is_ucum
    assert not parse("Gym2").is_ucum
    assert parse("mm").factor == approx(1e-3)  # millimetre, not metre squared
    assert parse("ms").dimension == (("s", 1),)  # millisecond, not metre second


def test_units_of_different_kinds_do_not_convert() -> None:
    with pytest.raises(UnitError, match="cannot be converted"):
        convert(1.0, "mGy", "Gy.m2")
    with pytest.raises(UnitError, match="not a UCUM unit"):
        convert(1.0, "furlong", "m")


def test_every_concept_code_looked_for_is_in_ps3_16() -> None:
    from pydicom.sr._concepts_dict import concepts

    from radbank.dicom.dose import codes

    known = {
        f"{scheme}:{value}"
        for scheme in ("DCM", "SCT")
        for by_keyword in concepts[scheme].values()
        for value in by_keyword
    }
    looked_for = {
        name: value
        for name, value in vars(codes).items()
        if name.isupper() and isinstance(value, str)
    }
    assert len(looked_for) > 90
    assert {name for name, value in looked_for.items() if value not in known} == set()
    assert codes.code_key("SRT", "T-04030") == "SCT:80248007"  # Left breast
    assert codes.code_key("SRT", "F-61FDB") == "SCT:349358000"  # Radiopharmaceutical agent
