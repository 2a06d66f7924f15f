"""Write docs/controls.md: every control, its scenario, thresholds, weakness flags and sources.

Run ``python -m tools.controls_doc`` after changing the catalogue, a feature or a weakness
flag; tests/test_controls_doc.py fails while the page is out of date.
"""

from __future__ import annotations

import sys
from pathlib import Path

from portal.catalogue import load_catalogue
from reference_portal.weaknesses import WEAKNESSES

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "controls.md"


def scenario_files() -> dict[str, list[str]]:
    markers = load_catalogue().by_marker()
    found: dict[str, list[str]] = {}
    for feature in sorted((ROOT / "features").rglob("*.feature")):
        relative = feature.relative_to(ROOT).as_posix()
        for token in feature.read_text(encoding="utf-8").split():
            if token.startswith("@") and token[1:] in markers:
                files = found.setdefault(markers[token[1:]].id, [])
                if relative not in files:
                    files.append(relative)
    return found


def render() -> str:
    catalogue = load_catalogue()
    scenarios = scenario_files()
    lines = [
        "# Controls",
        "",
        "Generated from `catalogue/controls.yaml`, `features/` and the reference portal's weakness",
        "flags by `python -m tools.controls_doc`; do not edit by hand.",
        "",
        "D = destructive (runs only when allowed, on a dedicated test account); "
        "S = slow (real waiting, in the background).",
        "Thresholds are profile `policy:` settings; the values shown are the defaults, and in "
        "brackets what a profile may set (a profile outside that range is refused).",
        "Feature: what the portal must offer; listed under the profile's `not_offered`, the "
        "control fails when the feature is required, and is skipped when it is optional.",
        "Criticality: the Allure severity of the control's scenarios (blocker, critical, normal, "
        "minor), this project's judgement of what a failure exposes.",
        "",
        "| Control | Area | Criticality | The portal must... | Default threshold | D/S | Feature "
        "| Scenario | Weakness flags | Sources |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for control in catalogue.controls:
        flags = [f"`{w.flag}`" for w in WEAKNESSES if w.control == control.id]
        flags += [f"(`{w.flag}`)" for w in WEAKNESSES if control.id in w.also_breaks]
        threshold = ", ".join(
            f"{name}={value} ({control.limits[name].describe()})"
            for name, value in control.threshold.items()
        )
        marks = "/".join(m for m, on in (("D", control.destructive), ("S", control.slow)) if on)
        cells = [
            control.id,
            control.area,
            control.criticality,
            control.statement,
            threshold,
            marks,
            f"{control.feature} ({'required' if control.feature_required else 'optional'})"
            if control.feature
            else "",
            "<br>".join(f"`{f}`" for f in scenarios.get(control.id, [])) or "not yet",
            " ".join(flags),
            "; ".join(control.sources),
        ]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    lines += ["", "## Sources", "", "| Key | Standard |", "|---|---|"]
    for key, standard in catalogue.standards.items():
        lines.append(f"| {key} | [{standard.name}]({standard.url}) |")
    lines.append("")
    return "\n".join(lines)


def main() -> int:
    DOC.parent.mkdir(exist_ok=True)
    DOC.write_text(render(), encoding="utf-8")
    print(f"wrote {DOC.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
