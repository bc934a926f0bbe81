"""GA4GH Data Use Ontology: the term table against the official DUO release, the checks on a
project's conditions and a request's purposes, and the match a data steward reads."""

from __future__ import annotations

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from radbank.governance import duo

CANCER = "MONDO:0004992"
LUNG_CANCER = "MONDO:0008903"  # a subtype of cancer in MONDO
TYPE_2_DIABETES = "MONDO:0005148"

NRES, GRU, HMB, POA = "DUO:0000004", "DUO:0000042", "DUO:0000006", "DUO:0000011"
DS_CANCER = f"DUO:0000007:{CANCER}"
DS_LUNG_CANCER = f"DUO:0000007:{LUNG_CANCER}"
DS_DIABETES = f"DUO:0000007:{TYPE_2_DIABETES}"
NMDS, GSO, CC, NPOA = "DUO:0000015", "DUO:0000016", "DUO:0000043", "DUO:0000044"
METHOD_DEVELOPMENT = "DUO:0000031"
ANCESTRY_RESEARCH = "DUO:0000033"
BIOMEDICAL_RESEARCH = "DUO:0000037"
GENETIC_RESEARCH = "DUO:0000038"
DRUG_DEVELOPMENT = "DUO:0000039"

# rdfs:label of each id in DUO release 2021-02-23 (EBISPOT/DUO src/ontology/duo.owl, versionIRI
# http://purl.obolibrary.org/obo/duo/releases/2021-02-23/duo.owl), copied when it was read.
OFFICIAL_LABELS = {
    "DUO:0000004": "no restriction",
    "DUO:0000042": "general research use",
    "DUO:0000006": "health or medical or biomedical research",
    "DUO:0000007": "disease specific research",
    "DUO:0000011": "population origins or ancestry research only",
    "DUO:0000012": "research specific restrictions",
    "DUO:0000015": "no general methods research",
    "DUO:0000016": "genetic studies only",
    "DUO:0000018": "not for profit, non commercial use only",
    "DUO:0000019": "publication required",
    "DUO:0000020": "collaboration required",
    "DUO:0000021": "ethics approval required",
    "DUO:0000022": "geographical restriction",
    "DUO:0000024": "publication moratorium",
    "DUO:0000025": "time limit on use",
    "DUO:0000026": "user specific restriction",
    "DUO:0000027": "project specific restriction",
    "DUO:0000028": "institution specific restriction",
    "DUO:0000029": "return to database or resource",
    "DUO:0000043": "clinical care use",
    "DUO:0000044": "population origins or ancestry research prohibited",
    "DUO:0000045": "not for profit organisation use only",
    "DUO:0000046": "non-commercial use only",
    "DUO:0000031": "method development",
    "DUO:0000032": "population research",
    "DUO:0000033": "ancestry research",
    "DUO:0000034": "age category research",
    "DUO:0000035": "gender category research",
    "DUO:0000036": "research control",
    "DUO:0000037": "biomedical research",
    "DUO:0000038": "genetic research",
    "DUO:0000039": "drug development research",
    "DUO:0000040": "disease category research",
}

# Modifiers a requester meets by confirming something.
REQUESTER_OBLIGATIONS = [
    "DUO:0000012",  # research specific restrictions
    "DUO:0000018",  # not for profit, non commercial use only
    "DUO:0000045",  # not for profit organisation use only
    "DUO:0000046",  # non-commercial use only
    "DUO:0000019",  # publication required
    "DUO:0000020",  # collaboration required
    "DUO:0000021",  # ethics approval required
    "DUO:0000022",  # geographical restriction
    "DUO:0000024",  # publication moratorium
    "DUO:0000025",  # time limit on use
    "DUO:0000026",  # user specific restriction
    "DUO:0000027",  # project specific restriction
    "DUO:0000028",  # institution specific restriction
    "DUO:0000029",  # return to database or resource
]


# The table


def test_the_table_follows_duo_release_2021_02_23() -> None:
    assert duo.release() == "2021-02-23"


def test_every_label_is_the_official_duo_label() -> None:
    assert {t.id: t.label for t in duo.terms()} == OFFICIAL_LABELS


@pytest.mark.parametrize(
    ("code", "shorthand"),
    [(NRES, "NRES"), (GRU, "GRU"), (HMB, "HMB"), ("DUO:0000007", "DS"), (POA, "POA")]
    + [(NMDS, "NMDS"), ("DUO:0000018", "NPUNCU"), ("DUO:0000045", "NPU")]
    + [("DUO:0000046", "NCU"), ("DUO:0000021", "IRB"), (CC, "CC"), (NPOA, "NPOA")],
)
def test_shorthands_are_the_official_ones(code: str, shorthand: str) -> None:
    assert duo.term(code).shorthand == shorthand


def test_the_permissions_are_the_five_duo_permissions() -> None:
    assert {t.id for t in duo.terms("permission")} == {NRES, GRU, HMB, "DUO:0000007", POA}


def test_the_is_a_hierarchy_is_duos() -> None:
    assert duo.term("DUO:0000007").parents == (HMB,)
    assert duo.term(HMB).parents == (GRU,)
    assert duo.term(GRU).parents == ("DUO:0000001",)
    assert duo.term(POA).parents == ("DUO:0000001",)
    assert duo.term("DUO:0000045").parents == ("DUO:0000018",)
    assert duo.term("DUO:0000046").parents == ("DUO:0000018",)
    for purpose in (GENETIC_RESEARCH, DRUG_DEVELOPMENT, "DUO:0000040"):
        assert duo.term(purpose).parents == (BIOMEDICAL_RESEARCH,)
    assert duo.term(METHOD_DEVELOPMENT).parents == ("OBI:0000066",)


def test_every_parent_is_a_term_or_a_named_root() -> None:
    known = {t.id for t in duo.terms()} | {"DUO:0000001", "DUO:0000017", "OBI:0000066"}
    assert {parent for t in duo.terms() for parent in t.parents} <= known


# Looking terms up


def test_term_returns_the_term() -> None:
    found = duo.term(HMB)
    assert (found.label, found.kind) == ("health or medical or biomedical research", "permission")
    assert str(found) == "health or medical or biomedical research (HMB, DUO:0000006)"


def test_an_unknown_term_says_where_to_find_valid_codes() -> None:
    with pytest.raises(duo.UnknownTerm) as raised:
        duo.term("DUO:0000099")
    message = str(raised.value)
    assert "DUO:0000099" in message
    assert "radbank.governance.duo.terms()" in message
    assert "https://www.ebi.ac.uk/ols4/ontologies/duo" in message
    assert isinstance(raised.value, ValueError)


@pytest.mark.parametrize("code", ["DUO_0000006", "duo:0000006", " DUO:0000006 "])
def test_a_misspelt_code_gets_a_did_you_mean(code: str) -> None:
    with pytest.raises(duo.UnknownTerm, match="did you mean DUO:0000006"):
        duo.term(code)


@pytest.mark.parametrize("code", ["DUO:6", "HMB", "", "MONDO:0004992"])
def test_a_malformed_code_is_refused(code: str) -> None:
    with pytest.raises(duo.UnknownTerm, match="seven digits"):
        duo.validate_conditions([code])


def test_an_obsolete_term_names_its_replacement() -> None:
    with pytest.raises(duo.UnknownTerm, match="DUO:0000042 general research use with"):
        duo.term("DUO:0000005")


def test_describe_gives_labels_for_display() -> None:
    assert duo.describe([DS_CANCER, NMDS, METHOD_DEVELOPMENT]) == [
        "disease specific research for MONDO:0004992 (DS)",
        "no general methods research (NMDS)",
        "method development",
    ]


def test_describe_refuses_unknown_codes() -> None:
    with pytest.raises(duo.UnknownTerm):
        duo.describe(["DUO:0000099"])


# A project's conditions


def test_conditions_are_one_permission_and_modifiers() -> None:
    conditions = duo.validate_conditions([NMDS, HMB, "DUO:0000021", NMDS])
    assert conditions.permission.code == HMB
    assert [m.code for m in conditions.modifiers] == [NMDS, "DUO:0000021"]
    assert conditions.codes == [HMB, NMDS, "DUO:0000021"]


def test_conditions_without_a_permission_are_refused() -> None:
    with pytest.raises(ValueError, match="exactly one DUO permission, found none"):
        duo.validate_conditions([NMDS, "DUO:0000021"])


def test_conditions_with_two_permissions_name_both() -> None:
    with pytest.raises(ValueError, match=f"exactly one DUO permission, found {GRU}, {HMB}"):
        duo.validate_conditions([GRU, HMB])


def test_disease_specific_research_needs_its_disease() -> None:
    with pytest.raises(ValueError, match=r"DUO:0000007: .* DUO:0000007:<disease-id>"):
        duo.validate_conditions(["DUO:0000007"])


def test_a_disease_must_be_a_prefixed_code() -> None:
    with pytest.raises(ValueError, match="DUO:0000007:cancer: the disease 'cancer'"):
        duo.validate_conditions(["DUO:0000007:cancer"])


@pytest.mark.parametrize("disease", [CANCER, "ICD10:C34.1", "ICD-10:C34", "DOID:1612"])
def test_disease_codes_from_any_vocabulary_are_kept(disease: str) -> None:
    conditions = duo.validate_conditions([f"DUO:0000007:{disease}"])
    assert conditions.permission.disease == disease


def test_a_disease_prefix_is_case_insensitive() -> None:
    conditions = duo.validate_conditions(["DUO:0000007:mondo:0004992"])
    assert conditions.permission.code == DS_CANCER


def test_a_qualifier_on_a_term_that_takes_none_is_refused() -> None:
    with pytest.raises(ValueError, match=f"{GRU}:{CANCER}: .* takes nothing after its id"):
        duo.validate_conditions([f"{GRU}:{CANCER}"])


def test_a_purpose_is_not_a_project_condition() -> None:
    with pytest.raises(ValueError, match=f"{METHOD_DEVELOPMENT}: .* To forbid methods research"):
        duo.validate_conditions([GRU, METHOD_DEVELOPMENT])


def test_ancestry_only_with_ancestry_prohibited_is_refused() -> None:
    with pytest.raises(ValueError, match="would allow nothing"):
        duo.validate_conditions([POA, NPOA])


def test_conditions_must_be_a_list_not_a_string() -> None:
    with pytest.raises(TypeError, match="not one string"):
        duo.validate_conditions(GRU)


def test_empty_conditions_are_refused() -> None:
    with pytest.raises(ValueError, match="empty"):
        duo.validate_conditions([])


def test_an_unknown_condition_is_refused() -> None:
    with pytest.raises(duo.UnknownTerm, match="DUO:0000099"):
        duo.validate_conditions([GRU, "DUO:0000099"])


# A request's purposes


def test_no_restriction_is_not_a_purpose() -> None:
    with pytest.raises(ValueError, match=f"{NRES}: .* describes a project"):
        duo.validate_purposes([NRES])


def test_a_modifier_is_not_a_purpose_but_can_be_attested() -> None:
    with pytest.raises(ValueError, match="DUO:0000021: .* request_attests"):
        duo.validate_purposes([HMB, "DUO:0000021"])


def test_a_request_must_say_what_the_study_is_about() -> None:
    with pytest.raises(ValueError, match="but not what it is about; add its topic"):
        duo.validate_purposes([METHOD_DEVELOPMENT, "DUO:0000034"])


def test_disease_category_research_needs_its_disease() -> None:
    with pytest.raises(ValueError, match="DUO:0000040:<disease-id>"):
        duo.validate_purposes(["DUO:0000040"])


def test_clinical_care_alone_is_a_purpose() -> None:
    assert duo.validate_purposes([CC]).codes == [CC]


# Matching: the permission


@pytest.mark.parametrize(
    ("purposes", "conditions"),
    [
        ([DS_CANCER], [GRU]),  # cancer research on a general research project
        ([DS_CANCER], [HMB]),
        ([DS_CANCER], [DS_CANCER]),
        ([HMB], [GRU]),
        ([HMB], [HMB]),
        ([GENETIC_RESEARCH], [HMB]),
        ([f"DUO:0000040:{CANCER}"], [DS_CANCER]),
        ([POA], [GRU]),
        ([ANCESTRY_RESEARCH], [POA]),
        ([POA], [POA]),
    ],
)
def test_a_more_specific_purpose_fits_a_more_general_permission(
    purposes: list[str], conditions: list[str]
) -> None:
    result = duo.match(purposes, conditions)
    assert result.allowed, result.reasons
    assert result.reasons[0].startswith("Permission ")
    assert ": met." in result.reasons[0]


@pytest.mark.parametrize(
    ("purposes", "conditions"),
    [
        ([GRU], [DS_CANCER]),  # general research on a disease-specific project
        ([HMB], [DS_CANCER]),
        ([BIOMEDICAL_RESEARCH], [DS_CANCER]),
        ([DRUG_DEVELOPMENT], [DS_CANCER]),
        ([GRU], [HMB]),
    ],
)
def test_a_more_general_purpose_never_fits_a_more_specific_permission(
    purposes: list[str], conditions: list[str]
) -> None:
    result = duo.match(purposes, conditions)
    assert not result.allowed
    assert result.refused_by == conditions
    assert "is broader than" in result.reasons[0]


def test_research_on_another_disease_is_refused() -> None:
    result = duo.match([DS_DIABETES], [DS_CANCER])
    assert not result.allowed
    assert result.refused_by == [DS_CANCER]


def test_only_the_same_disease_code_matches_and_the_reason_says_so() -> None:
    # Lung cancer is a kind of cancer, but radbank holds no disease hierarchy.
    result = duo.match([DS_LUNG_CANCER], [DS_CANCER])
    assert not result.allowed
    assert "only the same disease code matches" in result.reasons[0]
    assert "steward" in result.reasons[0]


@pytest.mark.parametrize(
    "purposes",
    [[GRU], [DS_CANCER], [POA], [ANCESTRY_RESEARCH, METHOD_DEVELOPMENT], [CC], [HMB, CC]],
)
def test_no_restriction_allows_everything(purposes: list[str]) -> None:
    result = duo.match(purposes, [NRES])
    assert result.allowed, result.reasons


@pytest.mark.parametrize("purposes", [[HMB], [DS_CANCER], [GRU], [GENETIC_RESEARCH]])
def test_ancestry_only_allows_only_ancestry_research(purposes: list[str]) -> None:
    result = duo.match(purposes, [POA])
    assert not result.allowed
    assert result.refused_by == [POA]


@pytest.mark.parametrize("purposes", [[POA], [ANCESTRY_RESEARCH]])
def test_health_research_excludes_ancestry_research(purposes: list[str]) -> None:
    assert not duo.match(purposes, [HMB]).allowed
    assert not duo.match(purposes, [DS_CANCER]).allowed


def test_every_topic_of_a_request_must_fit() -> None:
    result = duo.match([HMB, ANCESTRY_RESEARCH], [HMB])
    assert not result.allowed
    assert "Ancestry research (DUO:0000033) is not within" in result.reasons[0]


# Matching: modifiers


@pytest.mark.parametrize("modifier", REQUESTER_OBLIGATIONS)
def test_a_requester_obligation_is_refused_until_attested(modifier: str) -> None:
    result = duo.match([DS_CANCER], [GRU, modifier])
    assert not result.allowed
    assert result.refused_by == [modifier]
    assert "The requester must confirm that" in result.reasons[1]
    assert f"(attest {modifier})" in result.reasons[1]


@pytest.mark.parametrize("modifier", REQUESTER_OBLIGATIONS)
def test_a_requester_obligation_is_met_when_attested(modifier: str) -> None:
    result = duo.match([DS_CANCER], [GRU, modifier], request_attests=frozenset({modifier}))
    assert result.allowed, result.reasons
    assert "The requester confirms that" in result.reasons[1]


def test_each_unmet_obligation_gets_its_own_reason() -> None:
    result = duo.match(
        [HMB],
        [HMB, "DUO:0000021", "DUO:0000019", "DUO:0000046"],
        request_attests=frozenset({"DUO:0000019"}),
    )
    assert not result.allowed
    assert result.refused_by == ["DUO:0000021", "DUO:0000046"]
    assert len(result.reasons) == 4
    assert "local ethics committee" in result.reasons[1]
    assert "the use is non-commercial" in result.reasons[3]


def test_not_for_profit_non_commercial_covers_both_of_its_parts() -> None:
    both = frozenset({"DUO:0000018"})
    assert duo.match([HMB], [GRU, "DUO:0000045"], request_attests=both).allowed
    assert duo.match([HMB], [GRU, "DUO:0000046"], request_attests=both).allowed


def test_not_for_profit_non_commercial_needs_both_parts() -> None:
    parts = frozenset({"DUO:0000045", "DUO:0000046"})
    assert duo.match([HMB], [GRU, "DUO:0000018"], request_attests=parts).allowed
    one = frozenset({"DUO:0000046"})
    assert not duo.match([HMB], [GRU, "DUO:0000018"], request_attests=one).allowed
    assert not duo.match([HMB], [GRU, "DUO:0000045"], request_attests=one).allowed


def test_only_obligations_can_be_attested() -> None:
    with pytest.raises(ValueError, match=f"{NMDS}: .* is not something a requester confirms"):
        duo.match([HMB], [GRU], request_attests=frozenset({NMDS}))
    with pytest.raises(duo.UnknownTerm):
        duo.match([HMB], [GRU], request_attests=frozenset({"DUO:0000099"}))


def test_no_general_methods_research_refuses_method_development() -> None:
    refused = duo.match([HMB, METHOD_DEVELOPMENT], [GRU, NMDS])
    assert not refused.allowed
    assert refused.refused_by == [NMDS]
    assert "method development (DUO:0000031)" in refused.reasons[1]
    assert duo.match([HMB], [GRU, NMDS]).allowed


def test_method_development_is_allowed_where_methods_are_not_forbidden() -> None:
    assert duo.match([DS_CANCER, METHOD_DEVELOPMENT], [HMB]).allowed


def test_ancestry_research_prohibited_refuses_ancestry_research() -> None:
    result = duo.match([ANCESTRY_RESEARCH], [GRU, NPOA])
    assert not result.allowed
    assert result.refused_by == [NPOA]
    assert duo.match([DS_CANCER], [GRU, NPOA]).allowed


def test_genetic_studies_only_needs_genetic_research() -> None:
    assert duo.match([GENETIC_RESEARCH], [HMB, GSO]).allowed
    result = duo.match([HMB], [HMB, GSO])
    assert not result.allowed
    assert result.refused_by == [GSO]


def test_clinical_care_needs_the_clinical_care_modifier() -> None:
    refused = duo.match([CC], [GRU])
    assert not refused.allowed
    assert "DUO:0000043" in refused.reasons[0]
    assert duo.match([CC], [GRU, CC]).allowed
    assert duo.match([HMB, CC], [HMB, CC]).allowed


def test_clinical_care_use_does_not_widen_the_research_permission() -> None:
    assert not duo.match([GRU, CC], [HMB, CC]).allowed


@pytest.mark.parametrize("modifier", [t.id for t in duo.terms("modifier")])
def test_every_modifier_gets_a_reason(modifier: str) -> None:
    result = duo.match([HMB], [GRU, modifier])
    assert len(result.reasons) == 2
    assert modifier in result.reasons[1]


def test_match_takes_validated_conditions_and_purposes() -> None:
    purposes = duo.validate_purposes([DS_CANCER])
    conditions = duo.validate_conditions([HMB, "DUO:0000021"])
    result = duo.match(purposes, conditions, request_attests=frozenset({"DUO:0000021"}))
    assert result.allowed
    assert result.refused_by == []


def test_match_validates_lists_of_codes() -> None:
    with pytest.raises(ValueError, match="exactly one DUO permission"):
        duo.match([HMB], [NMDS])


# Properties

DISEASES = st.sampled_from([CANCER, LUNG_CANCER, TYPE_2_DIABETES])
MODIFIERS = [t.id for t in duo.terms("modifier")]
RESTRICTING_MODIFIERS = [m for m in MODIFIERS if m != CC]
PERMISSIONS = st.one_of(
    st.sampled_from([NRES, GRU, HMB, POA]), DISEASES.map(lambda d: f"DUO:0000007:{d}")
)
TOPICS = st.one_of(
    st.sampled_from([GRU, HMB, POA, BIOMEDICAL_RESEARCH, GENETIC_RESEARCH, DRUG_DEVELOPMENT])
    | st.sampled_from([ANCESTRY_RESEARCH, CC]),
    DISEASES.map(lambda d: f"DUO:0000007:{d}"),
    DISEASES.map(lambda d: f"DUO:0000040:{d}"),
)
FACETS = st.sampled_from([METHOD_DEVELOPMENT, "DUO:0000032", "DUO:0000034", "DUO:0000035"])
PURPOSES = st.builds(
    lambda topics, facets: topics + facets,
    st.lists(TOPICS, min_size=1, max_size=3),
    st.lists(FACETS, max_size=2),
)
ATTESTS = st.frozensets(st.sampled_from(REQUESTER_OBLIGATIONS))


def _conditions(permission: str, modifiers: list[str]) -> duo.DataUseConditions:
    assume(not (permission == POA and NPOA in modifiers))
    return duo.validate_conditions([permission, *modifiers])


@settings(max_examples=400)
@given(
    purposes=PURPOSES,
    permission=PERMISSIONS,
    modifiers=st.lists(st.sampled_from(MODIFIERS), unique=True, max_size=4),
    attests=ATTESTS,
    added=st.sampled_from(RESTRICTING_MODIFIERS),
)
def test_adding_a_modifier_never_turns_a_refusal_into_an_allow(
    purposes: list[str],
    permission: str,
    modifiers: list[str],
    attests: frozenset[str],
    added: str,
) -> None:
    """Clinical care use is left out: DUO defines it as widening use (tested above)."""
    assume(added not in modifiers)
    before = duo.match(purposes, _conditions(permission, modifiers), request_attests=attests)
    after = duo.match(
        purposes, _conditions(permission, [*modifiers, added]), request_attests=attests
    )
    if not before.allowed:
        assert not after.allowed
        assert set(before.refused_by) <= set(after.refused_by)


@settings(max_examples=200)
@given(
    purposes=PURPOSES,
    permission=PERMISSIONS,
    modifiers=st.lists(st.sampled_from(MODIFIERS), unique=True, max_size=4),
    attests=ATTESTS,
    more=ATTESTS,
)
def test_confirming_more_never_turns_an_allow_into_a_refusal(
    purposes: list[str],
    permission: str,
    modifiers: list[str],
    attests: frozenset[str],
    more: frozenset[str],
) -> None:
    conditions = _conditions(permission, modifiers)
    if duo.match(purposes, conditions, request_attests=attests).allowed:
        assert duo.match(purposes, conditions, request_attests=attests | more).allowed
