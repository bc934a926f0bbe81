"""The SR content tree as nodes keyed by concept code, and NUM items as `DoseValue`s.

Building the tree never raises: an item that cannot be read is left out with a finding
naming its position ("1.4.2": the second child of the fourth child of the first root
item), so the rest of the report is still extracted.
"""

from __future__ import annotations

import re
from collections.abc import Hashable
from dataclasses import dataclass, field
from functools import cache

from radbank.dicom.dose import units
from radbank.dicom.dose._read import Findings, code, code_fields, code_value, numbers
from radbank.dicom.dose._view import DataSetView
from radbank.dicom.dose.codes import code_key
from radbank.dicom.dose.model import CodedValue, DoseValue

# Deeper than any dose template nests (TID 10011 reaches 5 levels); a guard against
# self-referencing or hostile trees.
_MAX_DEPTH = 16
# concept name item fingerprint -> key, across objects: reports of one kind repeat the
# same few hundred names. Cleared when full, which only costs reading them again.
_KEYS: dict[Hashable, str | None] = {}
_MAX_KEYS = 50_000
_VALUE_WITH_UNIT = re.compile(r"\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*([^\d\s].*)")


@dataclass(eq=False, slots=True)
class Node:
    dataset: DataSetView
    concept: str | None
    path: str
    children: list[Node] = field(default_factory=list)
    # descendants by concept, built on the first search (the tree is complete by then)
    _index: dict[str | None, list[Node]] | None = None

    @property
    def meaning(self) -> str:
        """The concept's code meaning (read when a message needs it)."""
        concept = code_fields(self.dataset, "ConceptNameCodeSequence")
        return concept[2] if concept else ""

    def child(self, concept: str) -> Node | None:
        for node in self.children:
            if node.concept == concept:
                return node
        return None

    def walk(self) -> list[Node]:
        """This node's descendants, depth first, in document order."""
        descendants: list[Node] = []
        _collect(self.children, descendants)
        return descendants

    def find(self, concept: str) -> Node | None:
        """The first descendant with the concept, at any depth."""
        found = self._descendants().get(concept)
        return found[0] if found else None

    def find_all(self, concept: str) -> list[Node]:
        return list(self._descendants().get(concept, ()))

    def _descendants(self) -> dict[str | None, list[Node]]:
        index = self._index
        if index is None:
            index = self._index = {}
            for node in self.walk():
                same = index.get(node.concept)
                if same is None:
                    index[node.concept] = [node]
                else:
                    same.append(node)
        return index

    # values of the node's own item
    def text_value(self) -> str | None:
        return self.dataset.text("TextValue")

    def uid(self) -> str | None:
        return self.dataset.text("UID")

    def datetime_text(self) -> str | None:
        return self.dataset.text("DateTime")

    def code_value(self) -> CodedValue | None:
        return code(self.dataset, "ConceptCodeSequence")

    def code_or_text(self) -> str | None:
        """The meaning of a CODE item or the text of a TEXT item (both are allowed for
        some rows, such as Reference Point Definition)."""
        coded = self.code_value()
        if coded is not None:
            return coded.code_meaning or coded.code_value
        return self.text_value()


def _collect(nodes: list[Node], descendants: list[Node]) -> None:
    for node in nodes:
        descendants.append(node)
        if node.children:
            _collect(node.children, descendants)


def build(dataset: DataSetView, findings: Findings) -> Node:
    """The root node of a data set with a content tree."""
    concept = code(dataset, "ConceptNameCodeSequence")
    root = Node(dataset, concept.key if concept else None, "")
    root.children = _children(dataset, "", 1, findings, {})
    return root


def _children(
    dataset: DataSetView,
    path: str,
    depth: int,
    findings: Findings,
    keys: dict[DataSetView, str | None],
) -> list[Node]:
    if depth > _MAX_DEPTH:
        findings.add(
            "unreadable-item",
            f"content tree deeper than {_MAX_DEPTH} levels at item {path}; the deeper items "
            "were not read",
        )
        return []
    try:
        items = dataset.items("ContentSequence")
    except Exception as error:
        findings.add(
            "unreadable-item",
            f"the Content Sequence below item {path or 'root'} cannot be read ({error}); "
            "its items were skipped",
        )
        return []
    nodes = []
    for index, item in enumerate(items, start=1):
        item_path = f"{path}.{index}" if path else str(index)
        try:
            key = _concept_key(item, keys)
            if depth < _MAX_DEPTH and item.is_data_set and not item.has("ContentSequence"):
                children = []  # what _children gives, without the call: most items are leaves
            else:
                children = _children(item, item_path, depth + 1, findings, keys)
            node = Node(item, key, item_path, children)
        except Exception as error:
            findings.add(
                "unreadable-item",
                f"content item {item_path} cannot be read ({error}); it was skipped",
            )
            continue
        nodes.append(node)
    return nodes


def _concept_key(item: DataSetView, keys: dict[DataSetView, str | None]) -> str | None:
    """`code(item, "ConceptNameCodeSequence").key`, without reading the code meaning.

    `keys` holds the keys of the code items read so far: `_part10` gives the items of
    repeated concept names as one object, so each distinct name is read once per report,
    and once in all (`_KEYS`) where the item has a fingerprint."""
    try:
        sequence = item.items("ConceptNameCodeSequence")
        if not sequence:
            return None
        concept = sequence[0]
    except Exception:
        return None
    if concept in keys:
        return keys[concept]
    fingerprint = concept.fingerprint()
    if fingerprint is not None and fingerprint in _KEYS:
        key = _KEYS[fingerprint]
    else:
        value = code_value(concept)
        key = (
            None if value is None else code_key(concept.text("CodingSchemeDesignator") or "", value)
        )
        if fingerprint is not None:
            if len(_KEYS) >= _MAX_KEYS:
                _KEYS.clear()
            _KEYS[fingerprint] = key
    keys[concept] = key
    return key


@dataclass(frozen=True, eq=False)
class Row:
    """A NUM row of a template: the field's unit, the units the standard gives for the
    row (a vendor unit outside them is noted) and the row's name for `DoseValue.source`.
    Each row is one constant, compared (and hashed, for `_unit_reading`) by identity."""

    unit: str
    standard_units: tuple[str, ...]
    source: str


def _unit_code(dataset: DataSetView) -> tuple[str | None, str | None]:
    """The unit's code value and scheme, or its code meaning alone when it has no value."""
    try:
        sequence = dataset.items("MeasurementUnitsCodeSequence")
        item = sequence[0] if sequence else None
    except Exception:
        item = None
    if item is None:
        return None, None
    value = code_value(item)
    if value is not None:
        return value, item.text("CodingSchemeDesignator") or ""
    meaning = item.text("CodeMeaning")
    return (meaning, None) if meaning else (None, None)


def dose_value(
    node: Node | None, row: Row, sop_instance_uid: str, findings: Findings
) -> DoseValue | None:
    """The NUM item as a value in the row's unit; None (with a finding) when it has no
    readable value or its unit cannot be converted."""
    if node is None:
        return None
    label = f"{row.source} (item {node.path})"
    try:
        sequence = node.dataset.items("MeasuredValueSequence")
        measured = sequence[0] if sequence else None
    except Exception:
        measured = None
    if measured is None:
        if node.dataset.has("NumericValue"):
            findings.add(
                "value-misplaced",
                f"{label}: the value is in the content item itself, not in its Measured "
                "Value Sequence; read from there",
            )
            measured = node.dataset
        else:
            qualifier = code(node.dataset, "NumericValueQualifierCodeSequence")
            reason = f" ({qualifier.code_meaning})" if qualifier else ""
            findings.add("value-missing", f"{label}: the item has no value{reason}")
            return None

    unit, scheme = _unit_code(measured)
    if unit is None and measured is not node.dataset:
        unit, scheme = _unit_code(node.dataset)
        if unit is not None:
            findings.add(
                "unit-misplaced",
                f"{label}: the unit is in the content item, not in its Measured Value "
                "Sequence; read from there",
            )

    value = measured.number("FloatingPointValue")
    if value is None:
        value = measured.number("NumericValue")  # the usual case: one number
    if value is None:
        raw = measured.value("NumericValue")
        with_unit = _VALUE_WITH_UNIT.fullmatch(raw) if isinstance(raw, str) else None
        if with_unit and _is_unit(with_unit.group(2)):
            value = float(with_unit.group(1))
            if unit is None:
                unit = with_unit.group(2).strip()
            findings.add(
                "unit-misplaced",
                f"{label}: the value {raw.strip()!r} carries its unit in the number; read "
                f"as {value:g} {with_unit.group(2).strip()}",
            )
        else:
            values = numbers(raw, label, findings)
            if values:
                value = values[0]
                if len(values) > 1:
                    findings.add(
                        "multi-value",
                        f"{label}: {len(values)} values where one is expected; the first, "
                        f"{value:g}, was used",
                    )
    if value is None:
        findings.add("value-unreadable", f"{label}: no readable number")
        return None

    if unit is None:
        if len(row.standard_units) == 1:
            findings.add(
                "unit-missing",
                f"{label}: no unit given; read in {row.standard_units[0]}, the unit the "
                "template specifies",
            )
            unit = row.standard_units[0]
        else:
            findings.add("unit-missing", f"{label}: no unit given and the template allows several")
            return None
    if scheme not in (None, "UCUM"):
        findings.add("unit-scheme", f"{label}: unit {unit!r} is coded in {scheme}, not UCUM")
    try:
        unchanged, note = _unit_reading(unit, row)
        converted = value if unchanged else units.convert(value, unit, row.unit)
    except units.UnitError:
        findings.add(
            "unit-unknown",
            f"{label}: unit {unit!r} cannot be read as {row.unit}; the value {value:g} was "
            "not kept",
        )
        return None
    if note is not None:
        findings.add(*note)
    return DoseValue(converted, row.unit, node.concept or "", row.source, sop_instance_uid)


@cache
def _unit_reading(unit: str, row: Row) -> tuple[bool, tuple[str, str] | None]:
    """Whether a value in `unit` is the same number in the row's unit, and the finding
    (code and message) a value of the row in that unit gives; UnitError when the unit
    cannot be converted to the row's. Cached: a report gives most rows in one unit."""
    parsed, target = units.parse(unit), units.parse(row.unit)
    if parsed.dimension != target.dimension:
        raise units.UnitError(f"unit {unit!r} cannot be converted to {row.unit!r}")
    unchanged = parsed.factor == target.factor
    if unit in row.standard_units:
        return unchanged, None
    if not parsed.is_ucum:
        canonical = next(
            (
                standard
                for standard in row.standard_units
                if (units.parse(standard).factor, units.parse(standard).dimension)
                == (parsed.factor, parsed.dimension)
            ),
            None,
        )
        read_as = f"read as {canonical}" if canonical else f"converted to {row.unit}"
        return unchanged, (
            "unit-not-ucum",
            f"{row.source}: unit {unit!r} is not a UCUM code; {read_as}",
        )
    return unchanged, (
        "unit-converted",
        f"{row.source}: given in {unit}, not {' or '.join(row.standard_units)}; "
        f"converted to {row.unit}",
    )


def _is_unit(candidate: str) -> bool:
    try:
        units.parse(candidate.strip())
    except units.UnitError:
        return False
    return True
