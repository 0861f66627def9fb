"""One sandbox: the studio renders with the client's module, and the client needs nothing from the studio."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from prompt_studio import sandbox as client_sandbox

from apps.prompts import sandbox as server_sandbox

CLIENT_ROOT = Path(__file__).resolve().parents[1]


def test_it_is_one_module_not_two_copies():
    for name in ("TemplateProblem", "ENVIRONMENT", "VARIABLE_TYPES", "validate_values", "type_matches",
                 "coerce_sample", "suggest_types", "PromptSandbox"):  # fmt: skip
        assert getattr(server_sandbox, name) is getattr(client_sandbox, name), name
    assert not (Path(server_sandbox.__file__).read_text().count("class PromptSandbox"))


def test_the_client_sandbox_imports_nothing_from_the_studio():
    script = (
        "import sys; import prompt_studio.sandbox as s; "
        "print(s.render('{% for t in tags %}{{ t|upper }}{% endfor %}{{ 2 ** 10 }}', {'tags': ['a']})); "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('apps', 'studio', 'django', 'rest_framework')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=CLIENT_ROOT,
        env={"PYTHONPATH": str(CLIENT_ROOT), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["A1024", "[]"]


def test_the_client_declares_what_the_sandbox_imports():
    pyproject = (CLIENT_ROOT / "pyproject.toml").read_text()
    assert "Jinja2>=3.1.6" in pyproject
    source = (CLIENT_ROOT / "prompt_studio" / "sandbox.py").read_text()
    third_party = {
        line.split()[1].split(".")[0]
        for line in source.splitlines()
        if line.startswith(("import ", "from ")) and not line.startswith("from __future__")
    } - set(sys.stdlib_module_names)
    assert third_party == {"jinja2"}
