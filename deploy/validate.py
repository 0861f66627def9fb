"""Validate the deployment files offline; exit 1 naming every problem.

    python deploy/validate.py kubernetes [OVERLAY_DIR ...]   (default: every overlay, and the base)
    python deploy/validate.py compose [docker-compose.yml ...]

kubernetes: each kustomization is rendered with `kubectl kustomize`, and every
object is validated against the Kubernetes OpenAPI schemas of
KUBERNETES_VERSION with `kubernetes-validate` in strict mode (unknown fields are
errors). KEDA's ScaledObject is a custom resource, absent from the core
schemas: it is validated against the openAPIV3Schema of KEDA's own CRD, shipped
in deploy/schemas/ (unknown fields are errors there too). Any other kind the
schemas do not know is an error, never skipped.

compose: each file is validated against the Compose specification's JSON
schema, shipped in deploy/schemas/compose-spec.json.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent
SCHEMAS = ROOT / "schemas"
KUBERNETES = ROOT / "kubernetes"
KUBERNETES_VERSION = os.environ.get("KUBERNETES_VERSION", "1.31")
CUSTOM_SCHEMAS = {("keda.sh/v1alpha1", "ScaledObject"): SCHEMAS / "keda-scaledobject-v1alpha1.json"}


def _strict(schema: Any) -> Any:
    """Refuse unknown fields where the schema lists its properties, as the API server's strict validation does."""
    if isinstance(schema, dict):
        schema = {key: _strict(value) for key, value in schema.items()}
        if (
            "properties" in schema
            and "additionalProperties" not in schema
            and not schema.get("x-kubernetes-preserve-unknown-fields")
        ):
            schema["additionalProperties"] = False
        return schema
    if isinstance(schema, list):
        return [_strict(item) for item in schema]
    return schema


def render(kustomization: Path) -> list[dict[str, Any]]:
    import yaml

    kubectl = shutil.which("kubectl")
    if kubectl is None:
        raise SystemExit("kubectl is needed to render the manifests (kubectl kustomize).")
    done = subprocess.run([kubectl, "kustomize", str(kustomization)], capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise ValueError(f"kubectl kustomize failed: {done.stderr.strip()}")
    return [document for document in yaml.safe_load_all(done.stdout) if document]


def object_problems(document: dict[str, Any]) -> list[str]:
    import jsonschema
    import kubernetes_validate
    from kubernetes_validate.utils import SchemaNotFoundError, ValidationError

    key = (document.get("apiVersion"), document.get("kind"))
    if key in CUSTOM_SCHEMAS:
        schema = _strict(json.loads(CUSTOM_SCHEMAS[key].read_text()))
        validator = jsonschema.Draft7Validator(schema)
        return [
            f"{'.'.join(str(p) for p in error.absolute_path) or '(root)'}: {error.message}"
            for error in sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path))
        ]
    try:
        kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)
    except ValidationError as error:
        where = ".".join(str(p) for p in error.path) or "(root)"
        return [f"{where}: {error.message}"]
    except SchemaNotFoundError:
        return [f"no schema for {key[0]} {key[1]} in Kubernetes {KUBERNETES_VERSION} or deploy/schemas/"]
    return []


def check_kubernetes(folders: list[Path]) -> list[str]:
    problems = []
    for folder in folders:
        try:
            documents = render(folder)
        except ValueError as error:
            problems.append(f"{folder}: {error}")
            continue
        if not documents:
            problems.append(f"{folder}: renders no objects")
        for document in documents:
            name = f"{document.get('kind')}/{(document.get('metadata') or {}).get('name')}"
            problems += [f"{folder}: {name}: {problem}" for problem in object_problems(document)]
        print(f"{folder.relative_to(Path.cwd()) if folder.is_relative_to(Path.cwd()) else folder}: "
              f"{len(documents)} objects checked")  # fmt: skip
    return problems


def check_compose(files: list[Path]) -> list[str]:
    import jsonschema
    import yaml

    schema = json.loads((SCHEMAS / "compose-spec.json").read_text())
    validator = jsonschema.Draft7Validator(schema)
    problems = []
    for path in files:
        try:
            document = yaml.safe_load(path.read_text())
        except (OSError, yaml.YAMLError) as error:
            problems.append(f"{path}: {error}")
            continue
        for error in sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path)):
            where = ".".join(str(p) for p in error.absolute_path) or "(root)"
            problems.append(f"{path}: {where}: {error.message}")
        print(f"{path}: checked against the Compose specification")
    return problems


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("kubernetes", "compose"):
        print(__doc__, file=sys.stderr)
        return 2
    targets = [Path(arg).resolve() for arg in argv[1:]]
    if argv[0] == "kubernetes":
        folders = targets or [KUBERNETES / "base", *sorted((KUBERNETES / "overlays").iterdir())]
        problems = check_kubernetes(folders)
    else:
        problems = check_compose(targets or [ROOT.parent / "docker-compose.yml"])
    for problem in problems:
        print(f"INVALID {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
