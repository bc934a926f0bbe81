"""Units of measurement: read the UCUM codes vendors write and convert to the field's unit.

Dose reports carry units as UCUM codes (PS3.16 CID 82 and the unit rows of each template),
but real files also show codes without the UCUM product dot ("mGycm", "Gym2", "uAs") and
header attributes that have fixed units in PS3.3 (dGy*cm*cm, dGy, uA, us). `parse` reads a
unit into a scale factor and base dimensions; `convert` turns a value from one unit into
another of the same dimension, or says why it cannot.

Only the atoms dose reports use are known: gray, sievert, metre, second (and minute and
hour), ampere, volt, becquerel and curie, with the SI prefixes from pico to giga. UCUM
annotations in braces ("{events}", "{ratio}") and "1" are dimensionless.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

__all__ = ["ParsedUnit", "UnitError", "convert", "parse"]

_PREFIXES: dict[str, float] = {
    "G": 1e9,
    "M": 1e6,
    "k": 1e3,
    "h": 1e2,
    "d": 1e-1,
    "c": 1e-2,
    "m": 1e-3,
    "u": 1e-6,
    "µ": 1e-6,
    "n": 1e-9,
    "p": 1e-12,
}

# atom -> (factor to the base unit, base unit). Minute and hour are UCUM atoms of time,
# curie converts to becquerel (1 Ci = 3.7e10 Bq exactly).
_ATOMS: dict[str, tuple[float, str]] = {
    "Gy": (1.0, "Gy"),
    "Sv": (1.0, "Sv"),
    "m": (1.0, "m"),
    "s": (1.0, "s"),
    "min": (60.0, "s"),
    "h": (3600.0, "s"),
    "A": (1.0, "A"),
    "V": (1.0, "V"),
    "Bq": (1.0, "Bq"),
    "Ci": (3.7e10, "Bq"),
}
_PREFIXABLE = {"Gy", "Sv", "m", "s", "A", "V", "Bq", "Ci"}

# Spellings seen in vendor files that no tokenisation of UCUM atoms explains.
_ALIASES = {"kVp": "kV", "°": "deg", "no units": "1"}


class UnitError(ValueError):
    """A unit that cannot be read, or two units of different dimensions."""


@dataclass(frozen=True)
class ParsedUnit:
    """A unit as a factor times a product of base units with integer exponents."""

    factor: float
    dimension: tuple[tuple[str, int], ...]
    is_ucum: bool  # False when the code only parsed after guessing the missing dots


def _tokens(term: str) -> list[tuple[float, str, int]] | None:
    """Split a dot-free term such as "mGycm" or "Gym2" into (factor, base, exponent)
    tokens, preferring the longest prefixed atom at each step (so "mm" is millimetre and
    "ms" millisecond), with backtracking."""
    if not term:
        return []
    candidates: list[tuple[int, float, str]] = []
    for atom, (atom_factor, base) in _ATOMS.items():
        if term.startswith(atom):
            candidates.append((len(atom), atom_factor, base))
        if atom in _PREFIXABLE:
            for prefix, prefix_factor in _PREFIXES.items():
                if term.startswith(prefix + atom):
                    candidates.append((len(prefix) + len(atom), prefix_factor * atom_factor, base))
    for length, factor, base in sorted(candidates, key=lambda candidate: -candidate[0]):
        exponent_match = re.match(r"\^?(-?\d+)", term[length:])
        exponent = int(exponent_match.group(1)) if exponent_match else 1
        consumed = length + (exponent_match.end() if exponent_match else 0)
        rest = _tokens(term[consumed:])
        if rest is not None:
            return [(factor**exponent, base, exponent), *rest]
    return None


@cache
def parse(unit: str) -> ParsedUnit:
    """Read a UCUM code (or a vendor's near-UCUM spelling) into factor and dimension."""
    is_ucum = unit.strip() not in _ALIASES
    text = _ALIASES.get(unit.strip(), unit.strip())
    if text == "deg":
        return ParsedUnit(1.0, (("deg", 1),), is_ucum)
    text = re.sub(r"\{[^}]*\}", "", text)
    if text in {"", "1"}:
        return ParsedUnit(1.0, (), is_ucum)
    factor = 1.0
    exponents: dict[str, int] = {}
    terms = re.split(r"[.*]", text)
    for index, term in enumerate(terms):
        if "/" in term:
            # a single division, as in "mGy/s"; only the last term may carry it
            if index != len(terms) - 1 or term.count("/") != 1:
                raise UnitError(f"unit {unit!r} has a division this reader does not handle")
            numerator, denominator = term.split("/")
            parts = [(numerator, False), (denominator, True)]
        else:
            parts = [(term, False)]
        for part, inverse in parts:
            if part in {"", "1"}:
                continue
            tokens = _tokens(part)
            if tokens is None:
                raise UnitError(f"unit {unit!r} is not a UCUM unit this reader knows")
            if len(tokens) > 1:
                is_ucum = False
            for token_factor, base, exponent in tokens:
                sign = -1 if inverse else 1
                factor *= token_factor**sign
                exponents[base] = exponents.get(base, 0) + sign * exponent
    dimension = tuple(sorted((base, power) for base, power in exponents.items() if power))
    return ParsedUnit(factor, dimension, is_ucum)


def convert(value: float, from_unit: str, to_unit: str) -> float:
    """`value` in `from_unit` expressed in `to_unit`; UnitError when they do not match.

    The result is rounded to 12 significant digits so that a conversion by a power of ten
    gives the number a person would write (9586 uA.s is 9.586 mA.s, not 9.585999...).
    """
    source, target = parse(from_unit), parse(to_unit)
    if source.dimension != target.dimension:
        raise UnitError(f"unit {from_unit!r} cannot be converted to {to_unit!r}")
    if source.factor == target.factor:
        return value
    return float(f"{value * source.factor / target.factor:.12g}")
