"""The SR content tree as nodes keyed by concept code, and NUM items as `DoseValue`s.

Building the tree never raises: an item that cannot be read is left out with a finding
naming its position ("1.4.2": the second child of the fourth child of the first root
item), so the rest of the report is still extracted.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from pydicom.dataset import Dataset

from radbank.dicom.dose import units
from radbank.dicom.dose._read import Findings, code, numbers, raw_value, text
from radbank.dicom.dose.model import CodedValue, DoseValue

# Deeper than any dose template nests (TID 10011 reaches 5 levels); a guard against
# self-referencing or hostile trees.
_MAX_DEPTH = 16
_VALUE_WITH_UNIT = re.compile(r"\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*([^\d\s].*)")


@dataclass
class Node:
    dataset: Dataset
    value_type: str
    relationship: str
    concept: str | None
    meaning: str
    path: str
    children: list[Node] = field(default_factory=list)

    def child(self, concept: str) -> Node | None:
        return next((node for node in self.children if node.concept == concept), None)

    def walk(self) -> Iterator[Node]:
        """This node's descendants, depth first, in document order."""
        for node in self.children:
            yield node
            yield from node.walk()

    def find(self, concept: str) -> Node | None:
        """The first descendant with the concept, at any depth."""
        return next((node for node in self.walk() if node.concept == concept), None)

    def find_all(self, concept: str) -> list[Node]:
        return [node for node in self.walk() if node.concept == concept]

    # values of the node's own item
    def text_value(self) -> str | None:
        return text(self.dataset, "TextValue")

    def uid(self) -> str | None:
        return text(self.dataset, "UID")

    def datetime_text(self) -> str | None:
        return text(self.dataset, "DateTime")

    def code_value(self) -> CodedValue | None:
        return code(self.dataset, "ConceptCodeSequence")

    def code_or_text(self) -> str | None:
        """The meaning of a CODE item or the text of a TEXT item (both are allowed for
        some rows, such as Reference Point Definition)."""
        coded = self.code_value()
        if coded is not None:
            return coded.code_meaning or coded.code_value
        return self.text_value()


def build(dataset: Dataset, findings: Findings) -> Node:
    """The root node of a data set with a content tree."""
    concept = code(dataset, "ConceptNameCodeSequence")
    root = Node(
        dataset,
        text(dataset, "ValueType") or "CONTAINER",
        "",
        concept.key if concept else None,
        concept.code_meaning if concept else "",
        "",
    )
    root.children = _children(dataset, "", 1, findings)
    return root


def _children(dataset: Dataset, path: str, depth: int, findings: Findings) -> list[Node]:
    if depth > _MAX_DEPTH:
        findings.add(
            "unreadable-item",
            f"content tree deeper than {_MAX_DEPTH} levels at item {path}; the deeper items "
            "were not read",
        )
        return []
    try:
        items = list(dataset.get("ContentSequence") or [])
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
            concept = code(item, "ConceptNameCodeSequence")
            node = Node(
                item,
                text(item, "ValueType") or "",
                text(item, "RelationshipType") or "",
                concept.key if concept else None,
                concept.code_meaning if concept else "",
                item_path,
            )
            node.children = _children(item, item_path, depth + 1, findings)
        except Exception as error:
            findings.add(
                "unreadable-item",
                f"content item {item_path} cannot be read ({error}); it was skipped",
            )
            continue
        nodes.append(node)
    return nodes


@dataclass(frozen=True)
class Row:
    """A NUM row of a template: the field's unit, the units the standard gives for the
    row (a vendor unit outside them is noted) and the row's name for `DoseValue.source`."""

    unit: str
    standard_units: tuple[str, ...]
    source: str


def _unit_code(dataset: Dataset) -> tuple[str | None, str | None]:
    unit = code(dataset, "MeasurementUnitsCodeSequence")
    if unit is not None:
        return unit.code_value, unit.coding_scheme_designator
    try:
        sequence = dataset.get("MeasurementUnitsCodeSequence")
        meaning = text(sequence[0], "CodeMeaning") if sequence else None
    except Exception:
        meaning = None
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
        sequence = node.dataset.get("MeasuredValueSequence")
        measured = sequence[0] if sequence else None
    except Exception:
        measured = None
    if measured is None:
        if "NumericValue" in node.dataset:
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

    value: float | None = None
    try:
        floating = measured.get("FloatingPointValue")
    except Exception:
        floating = None
    if isinstance(floating, float) and floating == floating and abs(floating) != float("inf"):
        value = floating
    else:
        raw = raw_value(measured, "NumericValue")
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
        converted = units.convert(value, unit, row.unit)
        parsed = units.parse(unit)
    except units.UnitError:
        findings.add(
            "unit-unknown",
            f"{label}: unit {unit!r} cannot be read as {row.unit}; the value {value:g} was "
            "not kept",
        )
        return None
    if unit not in row.standard_units:
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
            findings.add(
                "unit-not-ucum", f"{row.source}: unit {unit!r} is not a UCUM code; {read_as}"
            )
        else:
            findings.add(
                "unit-converted",
                f"{row.source}: given in {unit}, not {' or '.join(row.standard_units)}; "
                f"converted to {row.unit}",
            )
    return DoseValue(converted, row.unit, node.concept or "", row.source, sop_instance_uid)


def _is_unit(candidate: str) -> bool:
    try:
        units.parse(candidate.strip())
    except units.UnitError:
        return False
    return True
