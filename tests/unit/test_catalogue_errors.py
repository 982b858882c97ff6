"""Catalogue load errors: every problem names the file and the entry; catalogue_version is a
content hash that ignores comments and layout."""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from triage.catalogue.loader import DEFAULT_CATALOGUE, load_catalogue
from triage.domain.catalogue import CatalogueError, parse_catalogue

KENT_TEXT = DEFAULT_CATALOGUE.read_text(encoding="utf-8")
KENT: dict[str, Any] = yaml.safe_load(KENT_TEXT)


def kent() -> dict[str, Any]:
    return copy.deepcopy(KENT)


def rule_index(data: dict[str, Any], section: list[dict[str, Any]], code: str) -> int:
    return next(i for i, rule in enumerate(section) if rule.get("service") == code)


def parse_error(data: dict[str, Any]) -> CatalogueError:
    with pytest.raises(CatalogueError) as caught:
        parse_catalogue(data, source="kent.yaml")
    error = caught.value
    assert error.source == "kent.yaml"
    assert str(error).startswith("kent.yaml: invalid catalogue")
    assert error.problems
    return error


def test_kent_catalogue_parses() -> None:
    catalogue = parse_catalogue(kent(), source="kent.yaml")
    assert catalogue.id == "kent"
    assert len(catalogue.allocation_rules) == 10
    assert len(catalogue.signpost_rules) == 17


# --- mutations: (mutate, entry that must be named, words in the message) --------------------


def unknown_service_in_allocation(data: dict[str, Any]) -> None:
    data["allocation"]["rules"][0]["service"] = "cisvaa"


def unknown_service_in_signposting(data: dict[str, Any]) -> None:
    data["signposting"]["rules"][3]["service"] = "dandelion"


def signpost_rule_naming_an_allocating_service(data: dict[str, Any]) -> None:
    data["signposting"]["rules"][0]["service"] = "isva"


def unknown_service_in_primary_order(data: dict[str, Any]) -> None:
    data["allocation"]["primary_order"].append("counselling")


def unknown_fact(data: dict[str, Any]) -> None:
    rules = data["allocation"]["rules"]
    rules[rule_index(data, rules, "stalking")]["when"] = {
        "fact": "offence.catgory",
        "equals": "stalking_harassment",
    }


def value_not_in_vocabulary(data: dict[str, Any]) -> None:
    data["conditions"]["sexual"]["equals"] = "sexaul"


def flag_not_in_vocabulary(data: dict[str, Any]) -> None:
    rules = data["signposting"]["rules"]
    rules[rule_index(data, rules, "aafda")]["when"] = {
        "fact": "flags",
        "contains_any": ["bereaved"],
    }


def area_not_in_vocabulary(data: dict[str, Any]) -> None:
    rules = data["signposting"]["rules"]
    rules[rule_index(data, rules, "davss")]["when"]["all"][1] = {
        "fact": "area",
        "equals": "westkent",
    }


def bad_end_of_working_day(data: dict[str, Any]) -> None:
    data["catalogue"]["end_of_working_day"] = "25:00"


def bad_safe_time(data: dict[str, Any]) -> None:
    data["contact"]["default_safe_times"][0]["from"] = "25:00"


def bad_office_hours(data: dict[str, Any]) -> None:
    data["appropriate_adult"]["office_hours"]["to"] = "17:60"


def duplicate_service(data: dict[str, Any]) -> None:
    data["services"].append(copy.deepcopy(data["services"][1]))


def missing_area_table(data: dict[str, Any]) -> None:
    del data["areas"]


def district_in_no_area(data: dict[str, Any]) -> None:
    data["areas"]["districts"]["CT1"] = {"la": "Canterbury City"}


def sensitive_word_in_template(data: dict[str, Any]) -> None:
    data["contact"]["templates"]["introduction"]["sms"] = (
        "Hello {first_name}, Kent Police asked us to call you."
    )


def disallowed_placeholder(data: dict[str, Any]) -> None:
    data["contact"]["templates"]["please_contact_us"]["email"]["body"] = (
        "Dear {first_name} {last_name}, please call {hub_phone}."
    )


def unknown_aa_signpost_target(data: dict[str, Any]) -> None:
    data["appropriate_adult"]["rules"][0]["signpost_to"] = "kcc-youth"


MUTATIONS: list[tuple[Callable[[dict[str, Any]], None], str, str]] = [
    (unknown_service_in_allocation, "allocation.rules[0] (service cisvaa)", "unknown service"),
    (unknown_service_in_signposting, "signposting.rules[3] (service dandelion)", "unknown"),
    (signpost_rule_naming_an_allocating_service, "signposting.rules[0] (service isva)", "isva"),
    (unknown_service_in_primary_order, "allocation.primary_order", "counselling"),
    (unknown_fact, "allocation.rules[5] (service stalking).when", "unknown fact 'offence.catgory'"),
    (value_not_in_vocabulary, "conditions.sexual", "'sexaul' is not a value of offence.category"),
    (flag_not_in_vocabulary, "signposting.rules[1] (service aafda).when", "'bereaved'"),
    (area_not_in_vocabulary, "signposting.rules[4] (service davss).when", "'westkent'"),
    (bad_end_of_working_day, "catalogue.end_of_working_day", "bad time '25:00'"),
    (bad_safe_time, "contact.default_safe_times[0].from", "bad time '25:00'"),
    (bad_office_hours, "appropriate_adult.office_hours.to", "bad time '17:60'"),
    (duplicate_service, "services[", "duplicate service code 'stalking'"),
    (missing_area_table, "areas", "missing area table"),
    (district_in_no_area, "areas.districts.CT1", "'Canterbury City'"),
    (sensitive_word_in_template, "contact.templates.introduction.sms", "'police'"),
    (disallowed_placeholder, "contact.templates.please_contact_us.email", "{last_name}"),
    (unknown_aa_signpost_target, "appropriate_adult.rules[0]", "'kcc-youth'"),
]


@pytest.mark.parametrize(
    ("mutate", "entry", "words"), MUTATIONS, ids=[m[0].__name__ for m in MUTATIONS]
)
def test_parse_error_names_the_entry(
    mutate: Callable[[dict[str, Any]], None], entry: str, words: str
) -> None:
    data = kent()
    mutate(data)
    error = parse_error(data)
    matching = [p for p in error.problems if p.startswith(entry) and words in p]
    assert matching, error.problems
    assert entry in str(error)


def test_every_problem_is_reported_at_once() -> None:
    data = kent()
    bad_end_of_working_day(data)
    value_not_in_vocabulary(data)
    duplicate_service(data)
    error = parse_error(data)
    assert len(error.problems) >= 3
    text = str(error)
    for entry in ("catalogue.end_of_working_day", "conditions.sexual", "duplicate service code"):
        assert entry in text


def test_parse_does_not_mutate_its_input() -> None:
    data = kent()
    parse_catalogue(data, source="kent.yaml")
    assert data == KENT


def test_not_a_mapping() -> None:
    with pytest.raises(CatalogueError) as caught:
        parse_catalogue(["services"], source="list.yaml")
    assert "list.yaml" in str(caught.value)


# --- through the loader, from a file -------------------------------------------------------


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_load_error_names_the_file_and_the_entry(tmp_path: Path) -> None:
    data = kent()
    value_not_in_vocabulary(data)
    path = write(tmp_path, "medway-draft.yaml", yaml.safe_dump(data, sort_keys=False))
    with pytest.raises(CatalogueError) as caught:
        load_catalogue(path)
    message = str(caught.value)
    assert "medway-draft.yaml" in message
    assert "conditions.sexual" in message
    assert "sexaul" in message


def test_load_error_for_bad_time_in_a_file(tmp_path: Path) -> None:
    text = KENT_TEXT.replace('end_of_working_day: "17:00"', 'end_of_working_day: "25:00"')
    assert text != KENT_TEXT
    with pytest.raises(CatalogueError) as caught:
        load_catalogue(write(tmp_path, "late.yaml", text))
    assert "late.yaml" in str(caught.value)
    assert "catalogue.end_of_working_day" in str(caught.value)


def test_load_error_for_invalid_yaml(tmp_path: Path) -> None:
    with pytest.raises(CatalogueError) as caught:
        load_catalogue(write(tmp_path, "broken.yaml", "services: [unclosed\n"))
    assert "broken.yaml" in str(caught.value)
    assert "not valid YAML" in str(caught.value)


def test_load_error_for_missing_file(tmp_path: Path) -> None:
    with pytest.raises(CatalogueError) as caught:
        load_catalogue(tmp_path / "nowhere.yaml")
    assert "nowhere.yaml" in str(caught.value)


# --- catalogue_version ----------------------------------------------------------------------


def test_version_is_sha256_of_content() -> None:
    version = load_catalogue().version
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", version)


def test_version_ignores_comments_and_layout(tmp_path: Path) -> None:
    original = load_catalogue().version
    commented = "# a new comment at the top\n" + KENT_TEXT.replace(
        "  end_of_working_day:", "  # when the hub closes\n  end_of_working_day:"
    )
    assert load_catalogue(write(tmp_path, "commented.yaml", commented)).version == original
    # Same content in another layout (block style, keys re-ordered) is the same version.
    relaid = yaml.safe_dump(KENT, sort_keys=True, default_flow_style=False)
    assert load_catalogue(write(tmp_path, "relaid.yaml", relaid)).version == original


def test_version_changes_with_content(tmp_path: Path) -> None:
    original = load_catalogue().version
    changed = KENT_TEXT.replace("attend_within_hours: 2", "attend_within_hours: 3")
    assert changed != KENT_TEXT
    assert load_catalogue(write(tmp_path, "changed.yaml", changed)).version != original
    reason = KENT_TEXT.replace("reason: stalking or harassment", "reason: stalking")
    assert reason != KENT_TEXT
    assert load_catalogue(write(tmp_path, "reason.yaml", reason)).version != original


def test_same_file_gives_same_version() -> None:
    assert load_catalogue().version == load_catalogue(DEFAULT_CATALOGUE).version


def test_named_conditions_in_a_cycle_are_refused() -> None:
    data = kent()
    data["conditions"]["sexual"] = {"any": [{"ref": "domestic_or_sexual_abuse"}]}
    error = parse_error(data)
    assert any(p.startswith("conditions.sexual") and "cycle" in p for p in error.problems)


def test_unknown_named_condition_is_refused() -> None:
    data = kent()
    data["allocation"]["rules"][0]["when"] = {"ref": "sexul"}
    error = parse_error(data)
    assert any("unknown named condition 'sexul'" in p for p in error.problems)


# --- wrong types anywhere: a CatalogueError naming the entry, never a traceback -------------

WRONG_VALUES: tuple[Any, ...] = ("x", 5, None, [{}])


def _nodes(node: Any, path: tuple[Any, ...]) -> list[tuple[Any, ...]]:
    """Key paths in the document: the first ten keys of each mapping (the district table is
    long and uniform) and the first two items of each list."""
    children: list[tuple[Any, Any]] = []
    if isinstance(node, dict):
        children = list(node.items())[:10]
    elif isinstance(node, list):
        children = list(enumerate(node[:2]))
    found: list[tuple[Any, ...]] = []
    for key, child in children:
        found.append((*path, key))
        found.extend(_nodes(child, (*path, key)))
    return found


@pytest.mark.parametrize("section", list(KENT))
def test_wrong_types_give_catalogue_errors(section: str) -> None:
    data = kent()
    escaped: list[str] = []
    for path in _nodes(data[section], (section,)):
        parent: Any = data
        for key in path[:-1]:
            parent = parent[key]
        original = parent[path[-1]]
        for wrong in WRONG_VALUES:
            parent[path[-1]] = wrong
            try:
                parse_catalogue(data, source="kent.yaml")
            except CatalogueError:
                pass
            except Exception as error:  # pragma: no cover - the failure being tested for
                escaped.append(f"{'.'.join(map(str, path))}={wrong!r}: {error!r}")
        parent[path[-1]] = original
    assert escaped == []


@pytest.mark.parametrize(
    ("mutate", "entry"),
    [
        (
            lambda d: d["appropriate_adult"].update(attend_within_hours="two"),
            "appropriate_adult.attend_within_hours",
        ),
        (lambda d: d["areas"]["areas"].update({"east-kent": "East Kent"}), "areas.areas.east-kent"),
        (lambda d: d["catalogue"].update(timezone=1), "catalogue.timezone"),
        (lambda d: d["references"].update(min_digits="six"), "references.min_digits"),
        (lambda d: d["conditions"].update(sexual={"fact": ["offence.category"]}), "conditions"),
        (
            lambda d: d["priority"][1]["deadline"].update(working_days="one"),
            "priority[1] (P2).deadline.working_days",
        ),
        (
            lambda d: d["appropriate_adult"]["office_hours"]["days"].append("thurs"),
            "appropriate_adult.office_hours.days",
        ),
    ],
    ids=lambda value: value if isinstance(value, str) else "wrong",
)
def test_wrong_types_are_named(mutate: Callable[[dict[str, Any]], None], entry: str) -> None:
    data = kent()
    mutate(data)
    error = parse_error(data)
    assert any(p.startswith(entry) for p in error.problems), error.problems
