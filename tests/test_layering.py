"""The apps depend on each other one way: a lower app never imports a higher one (README, Architecture).

Read with `ast` from the source (imports inside functions count too), so a lazy import cannot hide an
upward dependency. Tests are left out: a test may drive the whole stack (the key that must not reach the
playground page is a providers test); the apps' own code may not.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# Lowest first. An app may import apps of lower tiers only; two apps of one tier do not import each other.
# Apps named here before they exist (traces, monitoring, rollouts) hold their place for when they land.
ORDER: list[tuple[str, ...]] = [
    ("audit",),  # Django only
    ("core",),  # request middleware, nav, forms, health: the shared kernel every app may use
    ("accounts",),  # projects, roles (the one role check), API keys, and the audit page
    ("prompts",),
    ("datasets", "providers"),
    ("webhooks",),
    ("reviews",),  # notifies through webhooks
    ("playground",),
    ("experiments",),
    ("ratings",),
    ("traces",),
    ("monitoring",),
    ("rollouts",),
    ("api",),
    ("demo",),  # seeds every app; installed only on the embedded default
]
TIER = {app: rank for rank, tier in enumerate(ORDER) for app in tier}


def imported_apps(path: Path) -> list[tuple[int, str]]:
    """(line, app) for every `apps.<app>` a file imports, at any depth."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules = [node.module] if node.module != "apps" else [f"apps.{a.name}" for a in node.names]
        else:
            continue
        for module in modules:
            parts = module.split(".")
            if parts[0] == "apps" and len(parts) > 1:
                found.append((node.lineno, parts[1]))
    return found


def upward_imports(root: Path) -> list[str]:
    """Every import in an app's code (not its tests) of an app at its own tier or above, or of an app not in ORDER."""
    problems = []
    for app_dir in sorted(p for p in (root / "apps").iterdir() if (p / "__init__.py").exists()):
        app = app_dir.name
        if app not in TIER:
            problems.append(f"apps/{app} is not in the dependency order (tests/test_layering.py ORDER, README)")
            continue
        for path in sorted(app_dir.rglob("*.py")):
            if "tests" in path.relative_to(app_dir).parts:
                continue
            for line, other in imported_apps(path):
                if other == app:
                    continue
                if other not in TIER or TIER[other] >= TIER[app]:
                    problems.append(f"{path.relative_to(root)}:{line}: {app} imports {other}")
    return problems


def test_it_finds_no_app_importing_an_app_above_it():
    assert upward_imports(ROOT) == []


def test_the_audit_app_imports_only_django():
    imports = [
        f"{path.relative_to(ROOT)}:{line}: {other}"
        for path in (ROOT / "apps" / "audit").rglob("*.py")
        if "tests" not in path.parts
        for line, other in imported_apps(path)
        if other != "audit"
    ]
    assert imports == []


def test_the_python_client_imports_nothing_of_the_server():
    client = ROOT / "clients" / "python" / "prompt_studio"
    assert [f"{p.relative_to(ROOT)}" for p in client.rglob("*.py") if imported_apps(p)] == []


@pytest.mark.parametrize(
    ("app", "source", "expected"),
    [
        ("prompts", "from apps.reviews import gate\n", "prompts imports reviews"),
        ("prompts", "def later():\n    from apps.experiments.models import Cell\n", "prompts imports experiments"),
        ("datasets", "import apps.providers.gateway\n", "datasets imports providers"),
        ("audit", "from apps import accounts\n", "audit imports accounts"),
        ("newapp", "", "apps/newapp is not in the dependency order"),
    ],
)
def test_it_fails_when_a_lower_app_imports_a_higher_one(tmp_path, app, source, expected):
    package = tmp_path / "apps" / app
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "services.py").write_text(source)
    (tmp_path / "apps" / "reviews").mkdir()
    (tmp_path / "apps" / "reviews" / "__init__.py").write_text("from apps.prompts import services\n")
    problems = upward_imports(tmp_path)
    assert len(problems) == 1 and expected in problems[0]
