"""A readable text rendering of a catalogue, for `triage catalogue show`."""

from __future__ import annotations

from collections.abc import Sequence

from triage.domain.catalogue import Catalogue, Rule


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(headers)]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))
    out = [line, "  ".join("-" * w for w in widths)]
    out += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(out)


def render_catalogue(catalogue: Catalogue) -> str:
    parts = [f"{catalogue.name} ({catalogue.id})  {catalogue.version}", ""]
    parts.append("SERVICES")
    parts.append(
        _table(
            ["code", "mode", "group", "provider", "name"],
            [[s.code, s.mode, s.group, s.provider, s.name] for s in catalogue.services.values()],
        )
    )
    parts += ["", "ALLOCATION (primary order: " + ", ".join(catalogue.primary_order) + ")"]
    parts.append(
        _table(
            ["service", "when"],
            [
                *_rule_rows(catalogue.allocation_rules),
                [catalogue.fallback.target, "nothing above matched"],
            ],
        )
    )
    parts += ["", "SIGNPOSTS"]
    parts.append(
        _table(
            ["service", "when"],
            _rule_rows(catalogue.signpost_rules),
        )
    )
    parts += ["", "ENHANCED RIGHTS"]
    parts.append(
        _table(
            ["group", "when"],
            _rule_rows(catalogue.enhanced_rights),
        )
    )
    parts += ["", "PRIORITY"]
    parts.append(
        _table(
            ["priority", "deadline", "when"],
            [
                [
                    lv.priority,
                    f"{lv.elapsed_hours} hours"
                    if lv.elapsed_hours is not None
                    else f"end of working day {lv.working_days} "
                    f"({catalogue.end_of_working_day:%H:%M})",
                    lv.when.describe() if lv.when else "otherwise",
                ]
                for lv in catalogue.priorities
            ],
        )
    )
    parts += ["", "FLAGS"]
    parts.append(
        _table(
            ["flag", "when"],
            _rule_rows(catalogue.flag_rules),
        )
    )
    parts += ["", "AREAS"]
    parts.append(
        _table(
            ["district", "local authority", "area", "straddles"],
            [
                [d.code, d.local_authority, d.area, ", ".join(d.also)]
                for d in catalogue.districts.values()
            ],
        )
    )
    parts += ["", "CONTACT PLAN"]
    parts.append(
        _table(
            ["step", "kind", "when", "message"],
            [
                [
                    str(s.number),
                    s.kind,
                    "at triage (first safe moment)"
                    if s.at_triage
                    else f"{s.working_days} working day(s) after {s.after} step"
                    + (", other half of the day" if s.other_half else ""),
                    f"{s.message_template} by {'/'.join(s.message_channels)}"
                    if s.message_template
                    else "",
                ]
                for s in catalogue.contact.plan
            ],
        )
    )
    aa = catalogue.appropriate_adult
    parts += [
        "",
        "APPROPRIATE ADULT custody suites: "
        + ", ".join(f"{n} ({c})" for n, c in aa.custody_suites.items()),
    ]
    return "\n".join(parts)


def _rule_rows(rules: Sequence[Rule]) -> list[list[str]]:
    """Each rule's target and its condition in words."""
    return [[r.target, r.when.describe() if r.when else "-"] for r in rules]
