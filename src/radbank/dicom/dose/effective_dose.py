"""Effective dose estimated from the CT dose length product: E = k x DLP.

The k-factors (mSv per mGy.cm) are those of AAPM Report 96 (McCollough et al., "The
Measurement, Reporting, and Management of Radiation Dose in CT", 2008, Table 4), which
took them from Shrimpton et al. (NRPB-W67, 2006) and the European Guidelines on Quality
Criteria for CT (EUR 16262); they rest on ICRP 60 tissue weighting factors. The adult
values for all six regions and the paediatric values for head, chest, abdomen and pelvis
and trunk were checked against the table of Shrimpton et al. reproduced in Medical
Physics 39(4):2129, Table XII (2012), and the adult values against AAPM Report 96 as
quoted with its references; the paediatric neck and head-and-neck values could not be
checked here, so they are not offered. Nor was the footnote saying which CTDI phantom
(16 or 32 cm) the paediatric factors assume: read it before applying them to body DLPs.
The table has "abdomen and pelvis" only; an abdomen or a pelvis scan is estimated with
that factor.

An effective dose from a k-factor is an estimate for a reference patient, fit for
comparing protocols and for population statistics, not a patient's dose. ICRP 103 weights
give other factors (Deak et al., Radiology 257:158, 2010). The returned `DoseValue` says
so in its source, which names the region, the age band, k and the table.
"""

from __future__ import annotations

from radbank.dicom.dose.codes import EFFECTIVE_DOSE
from radbank.dicom.dose.model import DoseValue

__all__ = ["K_FACTORS", "K_FACTOR_SOURCE", "effective_dose_estimate"]

K_FACTOR_SOURCE = (
    "AAPM Report 96 (2008) Table 4, after Shrimpton et al. NRPB-W67 (2006), ICRP 60 weights"
)

# region -> age band -> k in mSv/(mGy.cm)
K_FACTORS: dict[str, dict[str, float]] = {
    "head": {"newborn": 0.011, "1y": 0.0067, "5y": 0.0040, "10y": 0.0032, "adult": 0.0021},
    "head and neck": {"adult": 0.0031},
    "neck": {"adult": 0.0059},
    "chest": {"newborn": 0.039, "1y": 0.026, "5y": 0.018, "10y": 0.013, "adult": 0.014},
    "abdomen and pelvis": {
        "newborn": 0.049,
        "1y": 0.030,
        "5y": 0.020,
        "10y": 0.015,
        "adult": 0.015,
    },
    "trunk": {"newborn": 0.044, "1y": 0.028, "5y": 0.019, "10y": 0.014, "adult": 0.015},
}

_REGION_NAMES = {
    "head": "head",
    "brain": "head",
    "head and neck": "head and neck",
    "head & neck": "head and neck",
    "neck": "neck",
    "chest": "chest",
    "thorax": "chest",
    "abdomen and pelvis": "abdomen and pelvis",
    "abdomen & pelvis": "abdomen and pelvis",
    "abdomen-pelvis": "abdomen and pelvis",
    "abdomen": "abdomen and pelvis",
    "pelvis": "abdomen and pelvis",
    "trunk": "trunk",
    "chest, abdomen and pelvis": "trunk",
    "chest-abdomen-pelvis": "trunk",
    "chest abdomen pelvis": "trunk",
}
_AGE_BANDS = {
    "newborn": "newborn",
    "0y": "newborn",
    "1y": "1y",
    "5y": "5y",
    "10y": "10y",
    "adult": "adult",
}


def effective_dose_estimate(
    dlp_mgycm: float | DoseValue, region: str, age_band: str = "adult"
) -> DoseValue:
    """E = k(region, age band) x DLP, in mSv, marked as an estimate with its source.

    `region` is one of the table's regions ("head", "head and neck", "neck", "chest",
    "abdomen and pelvis", "trunk") or a common synonym ("thorax", "abdomen",
    "chest-abdomen-pelvis"); `age_band` one of "newborn", "1y", "5y", "10y", "adult".
    A `DoseValue` DLP must be in mGy.cm and passes on its SOP Instance UID.
    """
    if isinstance(dlp_mgycm, DoseValue):
        if dlp_mgycm.unit != "mGy.cm":
            raise ValueError(
                f"the DLP is in {dlp_mgycm.unit}; give it in mGy.cm (as `dlp_mgycm` fields are)"
            )
        dlp, sop_instance_uid = dlp_mgycm.value, dlp_mgycm.sop_instance_uid
    else:
        dlp, sop_instance_uid = float(dlp_mgycm), ""
    if dlp < 0 or dlp != dlp:
        raise ValueError(f"the DLP must be a non-negative number, not {dlp}")
    table_region = _REGION_NAMES.get(" ".join(region.lower().split()))
    if table_region is None:
        raise ValueError(f"no k-factor for region {region!r}; use one of: {', '.join(K_FACTORS)}")
    band = _AGE_BANDS.get(age_band.lower().replace(" ", ""))
    if band is None:
        bands = ", ".join(dict.fromkeys(_AGE_BANDS.values()))
        raise ValueError(f"unknown age band {age_band!r}; use one of: {bands}")
    factors = K_FACTORS[table_region]
    if band not in factors:
        raise ValueError(
            f"no checked k-factor for {table_region} at age band {band}; this table has "
            f"{table_region} for {', '.join(factors)} only"
        )
    k = factors[band]
    return DoseValue(
        float(f"{k * dlp:.12g}"),
        "mSv",
        EFFECTIVE_DOSE,
        f"estimate: k = {k} mSv/(mGy.cm) for {table_region}, {band}, x DLP; {K_FACTOR_SOURCE}",
        sop_instance_uid,
    )
