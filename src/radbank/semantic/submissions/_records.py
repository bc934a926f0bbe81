"""CSV and JSON records: the readers (one CSV row or one JSON object is a `_Record`) and
the builder of each kind, which turns records into statements of the draft.
"""

from __future__ import annotations

import csv
import functools
import io
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import pyoxigraph as ox

from radbank.semantic.submissions._draft import (
    _DESCRIPTOR,
    _NARRATIVE,
    _NO_CLEANING,
    _SOFTWARE_AGENT,
    _SUBJECT,
    _TYPE,
    _VALUE,
    _Bad,
    _Draft,
    _Node,
    _Patient,
    _Term,
)
from radbank.semantic.submissions._identifying import _is_identifying
from radbank.semantic.submissions._values import (
    _code,
    _date_value,
    _number,
    _patient_id,
    _shown,
    _string,
    _text,
    _uids,
    _value,
)
from radbank.semantic.vocabulary import DCM, DCT, PROV, QUDT, RB, RDFS, qudt_unit


@dataclass
class _Record:
    """One CSV row or one JSON object of a record list."""

    row: str
    values: dict[str, Any]
    from_csv: bool
    prefix: str = ""  # "" in CSV; JSON keys of nested objects are "calibration.used"

    def __post_init__(self) -> None:
        # JSON null is a value left out, as an empty CSV cell is.
        self.values = {key: value for key, value in self.values.items() if value is not None}

    def name(self, key: str) -> str:
        return f"{self.prefix}{key}"


def _read_csv(draft: _Draft, text: str, kind: str, max_records: int) -> None:
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader, None)
    except csv.Error as exc:
        draft.violation("line 1", None, f"not a CSV header: {exc}")
        return
    if not header or not any(cell.strip() for cell in header):
        draft.violation(None, None, "the CSV is empty: the first line names the columns")
        return
    columns = [cell.strip() for cell in header]
    if len(columns) == 1 and (";" in columns[0] or "\t" in columns[0]):
        draft.violation(
            "line 1",
            None,
            "separate columns with commas (RFC 4180), not semicolons or tabs",
        )
        return
    seen: set[str] = set()
    for column in columns:
        if not column:
            draft.violation("line 1", None, "a column has no name; name every column")
        elif column.lower() in seen:
            draft.violation("line 1", column, "this column appears twice; name it once")
        seen.add(column.lower())
    if draft.violations:
        return
    builder = _BUILDERS[kind](draft)
    # Known columns match whatever their case ("Patient_ID"); form fields keep theirs.
    known = {name.lower(): name for name in (*builder.known, *builder.csv_only)}
    columns = [known.get(column.lower(), column) for column in columns]
    number = 0
    line = 2
    while True:
        try:
            cells = next(reader, None)
        except csv.Error as exc:
            draft.violation(f"line {line}", None, f"not valid CSV: {exc}")
            return
        if cells is None:
            break
        start, line = line, reader.line_num + 1
        if not any(cell.strip() for cell in cells):
            continue  # blank lines, e.g. at the end of a spreadsheet export
        number += 1
        row = f"row {number} (line {start})"
        if number > max_records:
            draft.violation(
                row, None, f"more than {max_records} rows: split the submission into parts"
            )
            return
        if len(cells) != len(columns):
            draft.violation(
                row, None, f"{len(cells)} cells where the header names {len(columns)} columns"
            )
            continue
        values = {column: cell for column, cell in zip(columns, cells, strict=True) if cell.strip()}
        builder.record(_Record(row, values, from_csv=True), number)
    if number == 0:
        draft.violation(None, None, "the CSV has a header but no rows")


def _read_json(draft: _Draft, document: Any, kind: str, max_records: int) -> None:
    builder = _BUILDERS[kind](draft)
    key = builder.list_key
    if not isinstance(document, dict):
        draft.violation("$", None, f"the document is a JSON object with a {key!r} array")
        return
    records = document.get(key)
    if not isinstance(records, list) or not records:
        draft.violation("$", key, f"a {kind} submission lists its records in a {key!r} array")
        return
    if len(records) > max_records:
        draft.violation(
            "$", key, f"more than {max_records} records: split the submission into parts"
        )
        return
    unknown = set(document) - {key, *builder.top_keys}
    for name in sorted(unknown):
        draft.violation("$", name, f"unknown key; a {kind} document has {builder.described()}")
    builder.top(document)
    for position, item in enumerate(records):
        row = f"$.{key}[{position}]"
        if not isinstance(item, dict):
            draft.violation(row, None, f"each record is a JSON object, not {_shown(item)}")
            continue
        builder.record(_Record(row, item, from_csv=False), position + 1)


class _Builder:
    """Turns records of one kind into statements; JSON and CSV share it."""

    list_key = ""
    top_keys: tuple[str, ...] = ()
    known: tuple[str, ...] = ()  # the keys of a record
    csv_only: tuple[str, ...] = ()  # CSV columns that are top-level keys in JSON

    def __init__(self, draft: _Draft) -> None:
        self.draft = draft

    def described(self) -> str:
        return f"{self.list_key!r}" + "".join(f", {k!r}" for k in self.top_keys)

    def top(self, document: Mapping[str, Any]) -> None:
        return None

    def record(self, record: _Record, number: int) -> None:
        raise NotImplementedError

    def check_keys(
        self,
        record: _Record,
        known: Collection[str],
        about: _Node,
        patient: _Patient | None,
        *,
        extra: bool = False,
    ) -> list[str]:
        """Report unknown keys; identifying ones are removed. Returns the keys that are
        neither known nor identifying when `extra` (form fields in a CSV row)."""
        rest = []
        for key in record.values:
            if key in known:
                continue
            if _is_identifying(key):
                self.draft.identifying(patient or about, key, record.values[key])
            elif extra:
                rest.append(key)
            else:
                self.draft.violation(
                    record.row,
                    record.name(key),
                    f"unknown {'column' if record.from_csv else 'key'}; known: "
                    f"{', '.join(k for k in known if k)}",
                )
        return rest

    def patient(self, record: _Record, node: _Node) -> _Patient | None:
        values = record.values
        if "patient_id" not in values:
            return None
        try:
            issuer = values.get("issuer_of_patient_id", "")
            patient = _Patient(
                _patient_id(issuer, "issuer_of_patient_id") if issuer else "",
                _patient_id(values["patient_id"], "patient_id"),
            )
        except _Bad as exc:
            self.draft.violation(record.row, record.name("patient_id"), str(exc))
            return None
        self.draft.add(node, _SUBJECT, patient, record.name("patient_id"), _NO_CLEANING)
        return patient

    def get(
        self,
        record: _Record,
        key: str,
        node: _Node,
        predicate: str,
        convert: Callable[[Any], _Term],
        cleaning: str = _DESCRIPTOR,
    ) -> bool:
        """Add `key`'s value, converted, as `predicate` of `node`; False if absent or bad.
        An absent key maps the predicate to the key all the same, for the shapes' messages."""
        name = record.name(key)
        self.draft.origins[node].fields.setdefault(predicate, name)
        if key not in record.values or record.values[key] is None:
            return False
        try:
            value = convert(record.values[key])
        except _Bad as exc:
            self.draft.violation(record.row, name, str(exc))
            self.draft.explained.add((node, predicate))
            return False
        self.draft.add(node, predicate, value, name, cleaning)
        return True

    def uids(self, record: _Record, key: str, node: _Node, predicate: str) -> None:
        name = record.name(key)
        self.draft.origins[node].fields.setdefault(predicate, name)
        if key not in record.values:
            return
        try:
            references = _uids(record.values[key])
        except _Bad as exc:
            self.draft.violation(record.row, name, str(exc))
            self.draft.explained.add((node, predicate))
            return
        for position, reference in enumerate(references):
            shown = name if len(references) == 1 else f"{name}[{position}]"
            self.draft.add(node, predicate, reference, shown, _NO_CLEANING)

    def quantity(
        self,
        record: _Record,
        node: _Node,
        predicate: str,
        value_key: str,
        unit_key: str,
        local: str,
    ) -> _Node | None:
        """A qudt:QuantityValue node from a number and a UCUM unit."""
        if value_key not in record.values and unit_key not in record.values:
            self.draft.origins[node].fields.setdefault(predicate, record.name(value_key))
            return None
        quantity = self.draft.node(local, record.row, record.name(value_key))
        self.draft.add(node, predicate, quantity, record.name(value_key), _NO_CLEANING)
        self.value_and_unit(record, quantity, value_key, unit_key)
        return quantity

    def value_and_unit(self, record: _Record, node: _Node, value_key: str, unit_key: str) -> None:
        number = functools.partial(_number, text_allowed=record.from_csv)
        self.get(record, value_key, node, QUDT + "numericValue", number)
        if self.get(record, unit_key, node, QUDT + "ucumCode", _unit, _NO_CLEANING):
            unit = qudt_unit(str(record.values[unit_key]).strip())
            if unit is not None:
                self.draft.add(node, QUDT + "hasUnit", ox.NamedNode(unit), record.name(unit_key))
        # qudt:hasUnit is derived from the unit: whatever the shapes say of it, they say of
        # the unit already.
        self.draft.explained.add((node, QUDT + "hasUnit"))

    def comment(self, record: _Record, node: _Node) -> None:
        self.get(record, "comment", node, RDFS + "comment", _string_of, _NARRATIVE)


def _unit(value: object) -> ox.Literal:
    text = _text(value)
    if not text or len(text) > 64:
        raise _Bad("a unit is a UCUM code such as mGy, Gy, MBq, h")
    return _string(text)


def _string_of(value: object) -> ox.Literal:
    return _string(_text(value))


class _CaseReportForms(_Builder):
    list_key = "forms"
    known = (
        "patient_id",
        "issuer_of_patient_id",
        "visit_date",
        "title",
        "study_instance_uid",
        "comment",
        "fields",
    )

    def record(self, record: _Record, number: int) -> None:
        draft = self.draft
        form = draft.node(f"forms/{number}", record.row)
        draft.roots.append(form)
        draft.add(form, _TYPE, ox.NamedNode(RB + "CaseReportForm"), None, _NO_CLEANING)
        patient = self.patient(record, form)
        self.get(record, "visit_date", form, RB + "visitDate", _date_value)
        self.get(record, "title", form, DCT + "title", _string_of)
        self.uids(record, "study_instance_uid", form, RB + "study")
        self.comment(record, form)
        fields_name = "(field columns)" if record.from_csv else "fields"
        draft.origins[form].fields.setdefault(RB + "field", fields_name)
        if record.from_csv:
            known = tuple(k for k in self.known if k != "fields")
            names = self.check_keys(record, known, form, patient, extra=True)
            fields = {name: record.values[name] for name in names}
        else:
            self.check_keys(record, self.known, form, patient)
            fields = record.values.get("fields", {})
            if not isinstance(fields, dict):
                draft.violation(
                    record.row, "fields", "fields is a JSON object: field name -> value"
                )
                return
        for position, (name, value) in enumerate(fields.items(), start=1):
            shown = name if record.from_csv else f"fields.{name}"
            if _is_identifying(name):
                draft.identifying(patient or form, shown, value)
                continue
            if value is None:
                continue  # not filled in
            item = draft.node(f"forms/{number}/fields/{position}", record.row, shown)
            draft.add(form, RB + "field", item, shown, _NO_CLEANING)
            draft.add(item, _TYPE, ox.NamedNode(RB + "CaseReportFormField"), None, _NO_CLEANING)
            draft.add(item, RB + "fieldName", _string(name), shown, _NO_CLEANING)
            try:
                converted = _value(value, from_csv=record.from_csv)
            except _Bad as exc:
                draft.violation(record.row, shown, str(exc))
                draft.explained.add((item, RB + "fieldValue"))
                continue
            draft.add(item, RB + "fieldValue", converted, shown, _VALUE)


class _Outcomes(_Builder):
    list_key = "outcomes"
    known = (
        "patient_id",
        "issuer_of_patient_id",
        "code",
        "date",
        "value",
        "unit",
        "study_instance_uid",
        "comment",
    )

    def record(self, record: _Record, number: int) -> None:
        draft = self.draft
        outcome = draft.node(f"outcomes/{number}", record.row)
        draft.roots.append(outcome)
        draft.add(outcome, _TYPE, ox.NamedNode(RB + "Outcome"), None, _NO_CLEANING)
        patient = self.patient(record, outcome)
        self.check_keys(record, self.known, outcome, patient)
        self.get(record, "code", outcome, RB + "code", _code, _NO_CLEANING)
        self.get(record, "date", outcome, DCT + "date", _date_value)
        if "unit" in record.values:
            self.quantity(
                record, outcome, RB + "observedValue", "value", "unit", f"outcomes/{number}/value"
            )
        else:
            self.get(
                record,
                "value",
                outcome,
                RB + "observedValue",
                functools.partial(_value, from_csv=record.from_csv),
                _VALUE,
            )
        self.uids(record, "study_instance_uid", outcome, RB + "study")
        self.comment(record, outcome)


class _OrganDoses(_Builder):
    list_key = "organ_doses"
    top_keys = ("simulation",)
    known = (
        "patient_id",
        "issuer_of_patient_id",
        "study_instance_uid",
        "irradiation_event_uid",
        "organ_code",
        "organ_name",
        "value",
        "unit",
        "quantity_concept",
    )
    simulation_keys = csv_only = ("software", "method")

    def __init__(self, draft: _Draft) -> None:
        super().__init__(draft)
        self.simulation: dict[str, Any] = {}
        self.simulations: dict[str, _Node] = {}
        self.software: dict[str, _Node] = {}

    def top(self, document: Mapping[str, Any]) -> None:
        simulation = document.get("simulation")
        if not isinstance(simulation, dict):
            self.draft.violation(
                "$",
                "simulation",
                'the simulation that computed the doses: {"software": "ImpactMC 1.5", '
                '"method": "..."}',
            )
            return
        for key in set(simulation) - set(self.simulation_keys):
            self.draft.violation(
                "$", f"simulation.{key}", "unknown key; a simulation has software and method"
            )
        self.simulation = simulation

    def record(self, record: _Record, number: int) -> None:
        draft = self.draft
        dose = draft.node(f"organ-doses/{number}", record.row)
        draft.roots.append(dose)
        draft.add(dose, _TYPE, ox.NamedNode(RB + "MonteCarloOrganDose"), None, _NO_CLEANING)
        known = self.known + (self.simulation_keys if record.from_csv else ())
        patient = self.patient(record, dose)
        self.check_keys(record, known, dose, patient)
        self.value_and_unit(record, dose, "value", "unit")
        if "quantity_concept" in record.values:
            self.get(record, "quantity_concept", dose, RB + "quantityConcept", _code, _NO_CLEANING)
        else:
            draft.add(dose, RB + "quantityConcept", ox.NamedNode(DCM + "113518"), None)
        self.get(record, "organ_code", dose, RB + "anatomicalRegion", _code, _NO_CLEANING)
        self.get(record, "organ_name", dose, RB + "regionName", _string_of)
        self.uids(record, "irradiation_event_uid", dose, RB + "irradiationEvent")
        self.uids(record, "study_instance_uid", dose, RB + "study")
        draft.origins[dose].fields.setdefault(
            RB + "irradiationEvent", record.name("irradiation_event_uid")
        )
        draft.origins[dose].fields.setdefault(PROV + "wasGeneratedBy", "software")
        settings = (
            {k: record.values[k] for k in self.simulation_keys if k in record.values}
            if record.from_csv
            else self.simulation
        )
        where = record if record.from_csv else _Record("$", settings, False, "simulation.")
        software = settings.get("software")
        method = settings.get("method")
        # One simulation per patient or object referenced and software: it belongs to
        # one subject, as every node of a part does.
        key = repr(
            (
                patient,
                record.values.get("irradiation_event_uid"),
                record.values.get("study_instance_uid"),
                software,
                method,
            )
        )
        simulation = self.simulations.get(key)
        if simulation is None:
            simulation = draft.node(f"simulations/{len(self.simulations) + 1}", where.row)
            self.simulations[key] = simulation
            draft.origins[simulation].fields.update(
                {
                    PROV + "wasAssociatedWith": where.name("software"),
                    RDFS + "label": where.name("software"),
                    RB + "method": where.name("method"),
                }
            )
            draft.add(
                simulation, _TYPE, ox.NamedNode(RB + "MonteCarloSimulation"), None, _NO_CLEANING
            )
            self.get(where, "method", simulation, RB + "method", _string_of)
            self.software_agent(where, simulation, software)
        draft.add(dose, PROV + "wasGeneratedBy", simulation, "software", _NO_CLEANING)

    def software_agent(self, where: _Record, simulation: _Node, software: object) -> None:
        if software is None:
            return
        try:
            label = _text(software)
        except _Bad as exc:
            self.draft.violation(where.row, where.name("software"), str(exc))
            return
        agent = self.software.get(label)
        if agent is None:
            agent = self.draft.node(f"software/{len(self.software) + 1}", where.row, "software")
            self.software[label] = agent
            self.draft.shared.add(agent)
            self.draft.add(agent, _TYPE, ox.NamedNode(_SOFTWARE_AGENT), None, _NO_CLEANING)
            self.draft.add(agent, RDFS + "label", _string(label), where.name("software"))
        self.draft.add(
            simulation, PROV + "wasAssociatedWith", agent, where.name("software"), _NO_CLEANING
        )


class _DosimetryWorkflows(_Builder):
    list_key = "workflows"
    known = (
        "patient_id",
        "issuer_of_patient_id",
        "study_instance_uid",
        "administration_event_uid",
        "calibration",
        "segmentation",
        "volumes_of_interest",
        "time_activity_curves",
        "fit",
        "time_integrated_activities",
        "absorbed_dose_calculation",
        "absorbed_doses",
        "comment",
    )

    def record(self, record: _Record, number: int) -> None:
        draft = self.draft
        base = f"workflows/{number}"
        workflow = draft.node(base, record.row)
        draft.roots.append(workflow)
        draft.add(workflow, _TYPE, ox.NamedNode(RB + "DosimetryWorkflow"), None, _NO_CLEANING)
        patient = self.patient(record, workflow)
        self.check_keys(record, self.known, workflow, patient)
        self.uids(record, "study_instance_uid", workflow, RB + "study")
        self.uids(record, "administration_event_uid", workflow, RB + "administration")
        self.comment(record, workflow)
        steps = {
            "calibration": ("SensitivityCalibration", ("sensitivity", "unit", "used")),
            "segmentation": ("Segmentation", ("used",)),
            "fit": ("CurveFit", ("model",)),
            "absorbed_dose_calculation": ("AbsorbedDoseCalculation", ("method",)),
        }
        nodes: dict[str, _Node] = {}
        for key, (cls, keys) in steps.items():
            part = self.part(record, key, keys)
            node = draft.node(f"{base}/{key.replace('_', '-')}", record.row, key)
            nodes[key] = node
            draft.origins[workflow].fields.setdefault(DCT + "hasPart", key)
            draft.add(workflow, DCT + "hasPart", node, key, _NO_CLEANING)
            draft.add(node, _TYPE, ox.NamedNode(RB + cls), None, _NO_CLEANING)
            if part is None:
                continue
            if key == "calibration":
                self.quantity(
                    part, node, RB + "sensitivity", "sensitivity", "unit", f"{base}/sensitivity"
                )
            if key in ("calibration", "segmentation"):
                self.uids(part, "used", node, PROV + "used")
            if key == "fit":
                self.get(part, "model", node, RB + "fitModel", _string_of)
            if key == "absorbed_dose_calculation":
                self.get(part, "method", node, RB + "method", _string_of)
        vois = self.volumes(record, base, nodes["segmentation"])
        curves = self.per_voi(
            record, "time_activity_curves", vois, base, ("voi", "points"), self.curve
        )
        for curve in curves:
            draft.add(nodes["fit"], PROV + "used", curve, "time_activity_curves", _NO_CLEANING)
        draft.origins[nodes["fit"]].fields.setdefault(PROV + "used", "time_activity_curves")
        activities = self.per_voi(
            record,
            "time_integrated_activities",
            vois,
            base,
            ("voi", "value", "unit"),
            functools.partial(self.result, "TimeIntegratedActivity", nodes["fit"]),
        )
        calculation = nodes["absorbed_dose_calculation"]
        for activity in activities:
            draft.add(calculation, PROV + "used", activity, "time_integrated_activities")
        draft.origins[calculation].fields.setdefault(PROV + "used", "time_integrated_activities")
        self.per_voi(
            record,
            "absorbed_doses",
            vois,
            base,
            ("voi", "value", "unit"),
            functools.partial(self.result, "VolumeOfInterestDose", calculation),
        )

    def part(self, record: _Record, key: str, keys: tuple[str, ...]) -> _Record | None:
        value = record.values.get(key)
        if value is None:
            return None
        if not isinstance(value, dict):
            self.draft.violation(record.row, key, f"{key} is a JSON object with {', '.join(keys)}")
            return None
        part = _Record(record.row, value, False, f"{key}.")
        for unknown in set(value) - set(keys):
            self.draft.violation(
                record.row, part.name(unknown), f"unknown key; {key} has {', '.join(keys)}"
            )
        return part

    def items(self, record: _Record, key: str, keys: tuple[str, ...]) -> Iterator[_Record]:
        value = record.values.get(key, [])
        if not isinstance(value, list):
            self.draft.violation(record.row, key, f"{key} is a JSON array of objects")
            return
        for position, item in enumerate(value):
            name = record.name(f"{key}[{position}]")
            if not isinstance(item, dict):
                self.draft.violation(record.row, name, f"{_shown(item)} is not a JSON object")
                continue
            part = _Record(record.row, item, False, f"{name}.")
            for unknown in set(item) - set(keys):
                self.draft.violation(
                    record.row, part.name(unknown), f"unknown key; known: {', '.join(keys)}"
                )
            yield part

    def volumes(self, record: _Record, base: str, segmentation: _Node) -> dict[str, _Node]:
        keys = ("id", "organ_code", "organ_name", "volume", "unit")
        found: dict[str, _Node] = {}
        for number, part in enumerate(self.items(record, "volumes_of_interest", keys), 1):
            voi = self.draft.node(
                f"{base}/volumes-of-interest/{number}", record.row, part.prefix.rstrip(".")
            )
            self.draft.add(voi, _TYPE, ox.NamedNode(RB + "VolumeOfInterest"), None, _NO_CLEANING)
            self.draft.add(
                voi, PROV + "wasGeneratedBy", segmentation, part.name("id"), _NO_CLEANING
            )
            try:
                label = _text(part.values.get("id"))
            except _Bad:
                self.draft.violation(
                    record.row, part.name("id"), "each volume of interest has an id (text)"
                )
            else:
                if label in found:
                    self.draft.violation(
                        record.row, part.name("id"), f"id {label[:40]!r} is used twice"
                    )
                found[label] = voi
            self.get(part, "organ_code", voi, RB + "anatomicalRegion", _code, _NO_CLEANING)
            self.get(part, "organ_name", voi, RB + "regionName", _string_of)
            self.quantity(part, voi, RB + "volume", "volume", "unit", f"{voi.local}/volume")
        return found

    def per_voi(
        self,
        record: _Record,
        key: str,
        vois: Mapping[str, _Node],
        base: str,
        keys: tuple[str, ...],
        make: Callable[[_Record, _Node], None],
    ) -> list[_Node]:
        made = []
        for number, part in enumerate(self.items(record, key, keys), 1):
            node = self.draft.node(f"{base}/{key.replace('_', '-')}/{number}", record.row)
            self.draft.origins[node].field = part.prefix.rstrip(".")
            self.draft.origins[node].fields.setdefault(RB + "volumeOfInterest", part.name("voi"))
            voi = (
                vois.get(part.values.get("voi"))
                if isinstance(part.values.get("voi"), str)
                else None
            )
            if voi is None:
                self.draft.violation(
                    record.row,
                    part.name("voi"),
                    f"{_shown(part.values.get('voi'))} is not the id of one of the "
                    "volumes_of_interest",
                )
                self.draft.explained.add((node, RB + "volumeOfInterest"))
            else:
                self.draft.add(node, RB + "volumeOfInterest", voi, part.name("voi"), _NO_CLEANING)
            make(part, node)
            made.append(node)
        return made

    def curve(self, part: _Record, curve: _Node) -> None:
        draft = self.draft
        draft.add(curve, _TYPE, ox.NamedNode(RB + "TimeActivityCurve"), None, _NO_CLEANING)
        draft.origins[curve].fields.setdefault(RB + "timeActivityPoint", part.name("points"))
        keys = ("time", "time_unit", "activity", "activity_unit")
        for number, point in enumerate(self.items(part, "points", keys), 1):
            node = draft.node(f"{curve.local}/points/{number}", part.row, point.prefix.rstrip("."))
            draft.add(curve, RB + "timeActivityPoint", node, point.prefix.rstrip("."), _NO_CLEANING)
            draft.add(node, _TYPE, ox.NamedNode(RB + "TimeActivityPoint"), None, _NO_CLEANING)
            self.quantity(
                point,
                node,
                RB + "timeSinceAdministration",
                "time",
                "time_unit",
                f"{node.local}/time",
            )
            self.quantity(
                point,
                node,
                RB + "measuredActivity",
                "activity",
                "activity_unit",
                f"{node.local}/activity",
            )

    def result(self, cls: str, step: _Node, part: _Record, node: _Node) -> None:
        draft = self.draft
        draft.add(node, _TYPE, ox.NamedNode(RB + cls), None, _NO_CLEANING)
        draft.add(node, PROV + "wasGeneratedBy", step, None, _NO_CLEANING)
        self.value_and_unit(part, node, "value", "unit")
        if cls == "VolumeOfInterestDose":
            draft.add(node, RB + "quantityConcept", ox.NamedNode(DCM + "128513"), None)


_BUILDERS: dict[str, Callable[[_Draft], _Builder]] = {
    "crf": _CaseReportForms,
    "outcome": _Outcomes,
    "organ-doses": _OrganDoses,
    "mrt-dosimetry": _DosimetryWorkflows,
}
