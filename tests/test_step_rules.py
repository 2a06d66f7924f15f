"""One clear path per control: steps gather evidence, ``scanners`` evaluators decide, and
``steps/outcome.conclude`` turns the Evaluation into the outcome. A verdict decided in a step
(an ``assert``, a raised ``AssertionError``, ``pytest.fail``) would bypass the evaluators and
their stable finding keys, so no step module may contain one."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

STEPS = Path(__file__).resolve().parent.parent / "steps"
# The one place that turns an evaluation into a failure.
OUTCOME = "outcome.py"


def verdicts_decided_in(source: str) -> list[str]:
    """Each statement in ``source`` that decides a verdict by itself, as "line: what"."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Assert):
            found.append(f"{node.lineno}: assert")
        elif isinstance(node, ast.Raise) and node.exc is not None:
            raised = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
            if isinstance(raised, ast.Name) and raised.id == "AssertionError":
                found.append(f"{node.lineno}: raise AssertionError")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            target = node.func
            if (
                target.attr == "fail"
                and isinstance(target.value, ast.Name)
                and target.value.id == "pytest"
            ):
                found.append(f"{node.lineno}: pytest.fail")
    return found


def step_modules() -> list[Path]:
    return sorted(p for p in STEPS.glob("*.py") if p.name != OUTCOME)


def test_step_modules_are_found() -> None:
    names = {p.name for p in step_modules()}
    assert {"session.py", "transport.py", "passwords.py", "common.py"} <= names


@pytest.mark.parametrize("module", step_modules(), ids=lambda p: p.name)
def test_no_verdict_is_decided_in_a_step(module: Path) -> None:
    found = verdicts_decided_in(module.read_text(encoding="utf-8"))
    assert not found, (
        f"steps/{module.name} decides verdicts itself ({'; '.join(found)}): put the decision "
        "in a scanners evaluate_* function and hand its Evaluation to steps.outcome.conclude"
    )


def test_the_rule_sees_every_kind_of_verdict() -> None:
    source = (
        "import pytest\n"
        "def step(kept):\n"
        "    assert not kept, 'left'\n"
        "    if kept:\n"
        "        raise AssertionError('left')\n"
        "    pytest.fail('left')\n"
        "    raise Inconclusive('could not run')\n"
    )
    assert verdicts_decided_in(source) == [
        "3: assert",
        "5: raise AssertionError",
        "6: pytest.fail",
    ]
