"""Quality rules for instances about to be archived: `check(dataset) -> list[Finding]`.

The rules, their severities and codes are documented in `radbank.dicom.quality.rules`.
"""

from radbank.dicom.quality.rules import BURNED_IN_RISK_SOP_CLASSES, Finding, Severity, check

__all__ = ["BURNED_IN_RISK_SOP_CLASSES", "Finding", "Severity", "check"]
