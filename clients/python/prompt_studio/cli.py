"""prompt-studio: prompts as files in a repository, and a CI gate on experiments, over the studio's REST API.

    prompt-studio pull [--dir prompts] [--label latest] [--format yaml|jinja] [NAME ...]
    prompt-studio push [--dir prompts] [--label staging] [--message M] [FILE ...]
    prompt-studio render NAME [--label L | --version N | --file F] --var k=v ...
    prompt-studio diff NAME OLD NEW   |   prompt-studio diff --file F [--against production]
    prompt-studio eval --prompt P --candidate N --against production --dataset D --endpoint E
                       --evaluator KIND [--min-win-rate 0.5] [--max-p 0.05] [--junit F] [--summary F]
    prompt-studio snapshot --out FILE [--label production]

--url and --key (or PROMPT_STUDIO_URL and PROMPT_STUDIO_KEY) name the studio and the project's API key.
Exit codes: 0 success (eval: the gate passed); 1 eval's thresholds failed, diff found differences, or push
could not move a label; 2 a usage, input or studio error.
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import re
import signal
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape, quoteattr

from prompt_studio import sandbox
from prompt_studio.client import Prompt, Studio, StudioError, StudioUnavailable

EXTENSIONS = (".yaml", ".yml", ".jinja", ".j2")
HEADER = re.compile(r"\A\{#-?\s*prompt-studio[ \t]*\n(?P<meta>.*?)\n\s*-?#\}\n?", re.DOTALL)
FILE_KEYS = ("name", "description", "type", "template", "messages", "config", "variables")


class CliError(Exception):
    """A problem the user can fix; printed as `error: ...` with exit code 2."""


# --- the REST API ---------------------------------------------------------------------------------


class Api:
    """JSON over HTTP with the key; GETs retry network errors, 5xx and 429, writes are sent once."""

    def __init__(self, url: str, key: str, *, timeout: float = 30.0, retries: int = 3):
        if not url or not key:
            raise CliError("Give the studio's --url and an API --key (or PROMPT_STUDIO_URL and PROMPT_STUDIO_KEY).")
        self.url, self.key, self.timeout, self.retries = url.rstrip("/"), key, timeout, retries

    def get(self, path: str, **query: Any) -> Any:
        return self.call("GET", path, query=query)

    def post(self, path: str, body: Any) -> Any:
        return self.call("POST", path, body=body)

    def call(self, method: str, path: str, *, body: Any = None, query: dict[str, Any] | None = None) -> Any:
        query_string = urllib.parse.urlencode({k: v for k, v in (query or {}).items() if v is not None})
        address = f"{self.url}/api/v1/{path}" + (f"?{query_string}" if query_string else "")
        data = None if body is None else json.dumps(body).encode()
        headers = {"Authorization": f"Bearer {self.key}", "Accept": "application/json"}
        if data is not None:
            headers["Content-Type"] = "application/json"
        attempts = self.retries + 1 if method == "GET" else 1
        problem = ""
        for attempt in range(attempts):
            if attempt:
                time.sleep(min(8.0, 0.5 * 2**attempt))
            request = urllib.request.Request(address, data=data, headers=headers, method=method)  # noqa: S310
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310 - http(s)
                    return json.loads(response.read() or b"{}")
            except urllib.error.HTTPError as exc:
                if exc.code >= 500 or exc.code == 429:
                    problem = f"HTTP {exc.code}"
                    continue
                try:
                    error = json.loads(exc.read())
                except ValueError:
                    error = {}
                raise StudioError(exc.code, error.get("code", "error"), error.get("detail", str(exc.reason))) from None
            except (urllib.error.URLError, OSError) as exc:
                problem = f"{type(exc).__name__}: {getattr(exc, 'reason', exc)}"
        raise StudioUnavailable(f"{self.url} did not answer {method} /api/v1/{path} ({problem}).")


def quoted(name: str) -> str:
    return urllib.parse.quote(name, safe="")


# --- prompt files ---------------------------------------------------------------------------------


def _yaml():
    try:
        import yaml
    except ImportError:  # pragma: no cover - PyYAML is a dependency of the package
        raise CliError("PyYAML is needed for prompt files: pip install PyYAML") from None
    return yaml


def _dump_yaml(document: dict[str, Any]) -> str:
    yaml = _yaml()

    class Dumper(yaml.SafeDumper):
        pass

    def text(dumper, value: str):
        style = "|" if "\n" in value else None
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)

    Dumper.add_representer(str, text)
    return yaml.dump(document, Dumper=Dumper, sort_keys=False, allow_unicode=True, width=10_000)


def file_document(version: dict[str, Any], description: str = "") -> dict[str, Any]:
    """What a prompt file holds: its content and config, not where it came from."""
    document: dict[str, Any] = {"name": version["name"]}
    if description:
        document["description"] = description
    document["type"] = version["type"]
    if version["type"] == "text":
        document["template"] = version["template"]
    else:
        document["messages"] = [{"role": m["role"], "content": m["content"]} for m in version["messages"]]
    document["config"] = version.get("config") or {}
    document["variables"] = [
        {key: spec[key] for key in ("name", "type", "description") if spec.get(key) not in (None, "")}
        for spec in version.get("variables") or []
    ]
    return document


def write_prompt_file(folder: Path, document: dict[str, Any], fmt: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for extension in EXTENSIONS:  # one file per prompt: a pull in another format replaces the old file
        (folder / f"{document['name']}{extension}").unlink(missing_ok=True)
    if fmt == "jinja" and document["type"] == "text":
        meta = {key: value for key, value in document.items() if key != "template"}
        path = folder / f"{document['name']}.jinja"
        path.write_text("{#- prompt-studio\n" + _dump_yaml(meta) + "-#}\n" + document["template"], encoding="utf-8")
    else:
        path = folder / f"{document['name']}.yaml"
        path.write_text(_dump_yaml(document), encoding="utf-8")
    return path


def read_prompt_file(path: Path) -> dict[str, Any]:
    """A prompt file as the document push sends; CliError names the file and the problem."""
    yaml = _yaml()
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CliError(f"{path}: cannot read it ({exc}).") from None
    try:
        if path.suffix in (".jinja", ".j2"):
            header = HEADER.match(text)
            meta = yaml.safe_load(header.group("meta")) if header else {}
            document = {**(meta or {}), "template": text[header.end() :] if header else text}
            document.setdefault("type", "text")
            if document["type"] != "text":
                raise CliError(f"{path}: a Jinja file holds a text prompt; put a chat prompt in a YAML file.")
        else:
            document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise CliError(f"{path}: not valid YAML ({exc}).") from None
    if not isinstance(document, dict):
        raise CliError(f"{path}: expected a mapping with type, template or messages, config and variables.")
    unknown = sorted(set(document) - set(FILE_KEYS))
    if unknown:
        raise CliError(f"{path}: unknown key(s) {', '.join(unknown)}; a prompt file has {', '.join(FILE_KEYS)}.")
    document.setdefault("name", path.stem)
    if document["name"] != path.stem:
        raise CliError(f"{path}: the file is named {path.stem} but says name: {document['name']}.")
    document.setdefault("type", "messages" in document and "chat" or "text")
    if document["type"] not in ("text", "chat"):
        raise CliError(f"{path}: type must be text or chat, not {document['type']!r}.")
    if document["type"] == "text" and not isinstance(document.get("template"), str):
        raise CliError(f"{path}: a text prompt needs a template.")
    if document["type"] == "chat" and not isinstance(document.get("messages"), list):
        raise CliError(f"{path}: a chat prompt needs messages: [{{role, content}}, ...].")
    for key, kind in (("config", dict), ("variables", list)):
        document[key] = document.get(key) or kind()
        if not isinstance(document[key], kind):
            raise CliError(f"{path}: {key} must be a {'mapping' if kind is dict else 'list'}.")
    return document


def prompt_files(folder: Path, files: list[str]) -> list[Path]:
    if files:
        paths = [Path(f) for f in files]
        missing = [str(p) for p in paths if not p.is_file()]
        if missing:
            raise CliError(f"No such file: {', '.join(missing)}.")
        return paths
    if not folder.is_dir():
        raise CliError(f"No folder {folder}: run prompt-studio pull first, or give --dir.")
    paths = sorted(p for p in folder.iterdir() if p.suffix in EXTENSIONS and p.is_file())
    stems = [p.stem for p in paths]
    twice = sorted({s for s in stems if stems.count(s) > 1})
    if twice:
        raise CliError(f"One file per prompt: {', '.join(twice)} has more than one file in {folder}.")
    return paths


# --- commands -------------------------------------------------------------------------------------


def cmd_pull(api: Api, args) -> int:
    listed = {p["name"]: p for p in api.get("prompts")["prompts"]}
    names = args.names or sorted(listed)
    unknown = [n for n in names if n not in listed]
    if unknown:
        raise CliError(f"No prompt called {', '.join(unknown)} in this project.")
    folder = Path(args.dir)
    for name in names:
        try:
            version = api.get(f"prompts/{quoted(name)}", label=args.label)
        except StudioError as exc:
            if exc.code == "label_not_found":
                print(f"{name}: no {args.label} label, skipped")
                continue
            raise
        path = write_prompt_file(folder, file_document(version, listed[name]["description"]), args.format)
        print(f"{name}: v{version['version']} ({args.label}) -> {path}")
    return 0


def cmd_push(api: Api, args) -> int:
    paths = prompt_files(Path(args.dir), args.files)
    documents = [(path, read_prompt_file(path)) for path in paths]  # every file is checked before any is sent
    refused = 0
    for path, document in documents:
        name = document["name"]
        try:
            history = api.get(f"prompts/{quoted(name)}/versions")["versions"]
        except StudioError as exc:
            if exc.code != "prompt_not_found":
                raise
            history = []
        body = {
            "type": document["type"],
            "template": document.get("template", "") if document["type"] == "text" else "",
            "config": document["config"],
            "variables": document["variables"],
            "parent_version": history[0]["version"] if history else None,
            "message": args.message or f"pushed from {path}",
            "create_prompt": not history,
        }
        if document["type"] == "chat":
            body["messages"] = document["messages"]
        saved = api.post(f"prompts/{quoted(name)}/versions", body)
        print(f"{name}: {'saved v' if saved['created'] else 'unchanged, v'}{saved['version']}")
        if args.label:
            try:
                moved = api.post(
                    f"prompts/{quoted(name)}/labels/{quoted(args.label)}",
                    {"version": saved["version"], "reason": args.message or f"pushed from {path}"},
                )
                print(f"{name}: {args.label} -> v{moved['version']}" + ("" if moved["moved"] else " (already there)"))
            except StudioError as exc:
                if exc.code != "review_required":
                    raise
                refused += 1
                print(f"{name}: {args.label} NOT moved: {exc.detail}", file=sys.stderr)
    return 1 if refused else 0


def _coerce(value: str, kind: str) -> Any:
    if kind == "string":
        return value
    if kind == "boolean":
        if value.lower() in ("true", "yes", "1"):
            return True
        if value.lower() in ("false", "no", "0"):
            return False
        raise CliError(f"{value!r} is not a boolean (true or false).")
    try:
        parsed = json.loads(value)
    except ValueError:
        raise CliError(f"{value!r} is not a {kind} in JSON.") from None
    if not sandbox.type_matches(kind, parsed):
        raise CliError(f"{value!r} is not a {kind}.")
    return parsed


def _variables(pairs: list[str], specs: list[dict[str, Any]], vars_json: str | None) -> dict[str, Any]:
    types = {spec["name"]: spec.get("type") or "string" for spec in specs}
    values: dict[str, Any] = {}
    if vars_json:
        try:
            values.update(json.loads(vars_json))
        except (ValueError, TypeError):
            raise CliError("--vars-json must be a JSON object.") from None
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep:
            raise CliError(f"--var {pair!r}: write name=value.")
        try:
            values[name] = _coerce(value, types.get(name, "string"))
        except CliError as exc:
            raise CliError(f"--var {name}: {exc}") from None
    return values


def cmd_render(api: Api | None, args) -> int:
    if args.file:
        document = read_prompt_file(Path(args.file))
        variables = _variables(args.var, document["variables"], args.vars_json)
        try:
            output = Prompt.from_document({**document, "version": 0}, source="file").render(**variables)
        except ValueError as exc:
            raise CliError(str(exc)) from None
    else:
        if not args.name:
            raise CliError("Give a prompt NAME, or --file.")
        selector = {"version": args.version} if args.version else {"label": args.label}
        document = api.get(f"prompts/{quoted(args.name)}", **selector)
        variables = _variables(args.var, document["variables"], args.vars_json)
        rendered = api.post(
            f"prompts/{quoted(args.name)}/render", {"version": document["version"], "variables": variables}
        )
        output = rendered.get("text", rendered.get("messages"))
    print(output if isinstance(output, str) else json.dumps(output, indent=2, ensure_ascii=False))
    return 0


def _as_text(document: dict[str, Any]) -> str:
    if document["type"] == "text":
        return document.get("template") or ""
    return "\n\n".join(f"[{m['role']}]\n{m['content']}" for m in document.get("messages") or [])


def cmd_diff(api: Api, args) -> int:
    if args.file:
        local = read_prompt_file(Path(args.file))
        remote = api.get(f"prompts/{quoted(local['name'])}", label=args.against)
        lines = list(
            difflib.unified_diff(
                _as_text(remote).splitlines(),
                _as_text(local).splitlines(),
                fromfile=f"{local['name']} v{remote['version']} ({args.against})",
                tofile=str(args.file),
                lineterm="",
            )
        )
        changes = [f"type: {remote['type']} -> {local['type']}"] if remote["type"] != local["type"] else []
        for key in sorted(set(remote["config"]) | set(local["config"])):
            if remote["config"].get(key) != local["config"].get(key):
                changes.append(f"config.{key}: {remote['config'].get(key)!r} -> {local['config'].get(key)!r}")
        remote_vars = {v["name"]: v.get("type") for v in remote["variables"]}
        local_vars = {v["name"]: v.get("type") for v in local["variables"]}
        for name in sorted(set(remote_vars) | set(local_vars)):
            if name not in local_vars:
                changes.append(f"variable {name}: removed")
            elif name not in remote_vars:
                changes.append(f"variable {name}: added")
            elif local_vars[name] and local_vars[name] != remote_vars[name]:
                changes.append(f"variable {name}: {remote_vars[name]} -> {local_vars[name]}")
    else:
        if not (args.name and args.old and args.new):
            raise CliError("Give NAME OLD NEW (versions or labels), or --file F [--against LABEL].")
        answer = api.get(f"prompts/{quoted(args.name)}/diff", old=args.old, new=args.new)
        lines = answer["diff"].splitlines()
        changes = [f"type changed to {args.new}"] if answer["type_changed"] else []
        changes += [f"config.{c['name']}: {c['old'] or '—'} -> {c['new'] or '—'}" for c in answer["config"]]
        changes += [f"variable {c['name']}: {c['old'] or '—'} -> {c['new'] or '—'}" for c in answer["variables"]]
    for line in lines + changes:
        print(line)
    if not lines and not changes:
        print("no differences")
    return 1 if lines or changes else 0


# --- eval: the CI gate ----------------------------------------------------------------------------


def _evaluator(spec: str) -> dict[str, Any]:
    """[NAME=]KIND[:PARAMS_JSON], e.g. exact_match, or 'short=length:{"max": 400}'."""
    head, _, params = spec.partition(":")
    name, _, kind = head.rpartition("=")
    try:
        parsed = json.loads(params) if params else {}
    except ValueError:
        raise CliError(f"--evaluator {spec!r}: the parameters after ':' must be a JSON object.") from None
    if not isinstance(parsed, dict) or not kind:
        raise CliError(f"--evaluator {spec!r}: write [NAME=]KIND[:{{...}}], e.g. exact_match.")
    return {"name": name or kind, "kind": kind, "params": parsed}


def _selector(value: str) -> dict[str, Any]:
    return {"version": int(value)} if value.isdigit() else {"label": value}


def _label_of(value: str) -> str:
    return f"v{value}" if value.isdigit() else value


def cmd_eval(api: Api, args) -> int:
    if args.min_win_rate is None and args.max_p is None:
        raise CliError("Give a threshold: --min-win-rate and/or --max-p.")
    evaluators = [_evaluator(spec) for spec in args.evaluator]
    gate_evaluator = args.gate_evaluator or evaluators[0]["name"]
    if gate_evaluator not in {e["name"] for e in evaluators}:
        raise CliError(f"--gate-evaluator {gate_evaluator!r} is not one of the --evaluator names.")
    candidate, baseline = _label_of(args.candidate), _label_of(args.against)
    body = {
        "name": args.name or f"CI gate: {args.prompt} {candidate} vs {baseline}",
        "dataset": args.dataset,
        "variants": [
            {"name": "baseline", "prompt": args.prompt, "endpoint": args.endpoint, **_selector(args.against)},
            {"name": "candidate", "prompt": args.prompt, "endpoint": args.endpoint, **_selector(args.candidate)},
        ],
        "evaluators": evaluators,
        "repeats": args.repeats,
        "start": True,
    }
    if args.dataset_version:
        body["dataset_version"] = args.dataset_version
    started = api.post("experiments", body)
    experiment_id = started["id"]
    print(f"experiment {experiment_id}: {args.prompt} {candidate} (candidate) against {baseline} on {args.dataset}")
    status = _wait(api, experiment_id, args.timeout, args.poll)
    if status["status"] != "finished":
        raise CliError(f"experiment {experiment_id} ended {status['status']}: {status.get('status_reason') or ''}")
    comparison = api.get(
        f"experiments/{experiment_id}/compare", candidate="candidate", baseline="baseline", evaluator=gate_evaluator
    )
    checks = _checks(comparison, args)
    passed = all(ok for _, ok, _ in checks)
    print(comparison["verdict"])
    for title, ok, detail in checks:
        print(f"{'PASS' if ok else 'FAIL'}  {title}: {detail}")
    print("gate passed" if passed else "gate FAILED")
    context = {"args": args, "id": experiment_id, "status": status, "comparison": comparison, "checks": checks}
    if args.junit:
        Path(args.junit).write_text(_junit(context), encoding="utf-8")
    summary_path = args.summary or os.environ.get("GITHUB_STEP_SUMMARY")
    if summary_path:
        with open(summary_path, "a", encoding="utf-8") as out:
            out.write(_markdown(context))
    return 0 if passed else 1


def _interrupted(signum, frame) -> None:
    raise KeyboardInterrupt


def _wait(api: Api, experiment_id: int, timeout: float, poll: float) -> dict[str, Any]:
    # A cancelled CI job gets SIGINT, then SIGTERM: either stops the experiment too, so it spends no more.
    previous = signal.signal(signal.SIGTERM, _interrupted)
    try:
        return _poll(api, experiment_id, timeout, poll)
    except KeyboardInterrupt:
        _cancel(api, experiment_id)
        raise CliError(f"interrupted; experiment {experiment_id} was cancelled.") from None
    finally:
        signal.signal(signal.SIGTERM, previous)


def _poll(api: Api, experiment_id: int, timeout: float, poll: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    shown = ""
    while True:
        status = api.get(f"experiments/{experiment_id}")
        cells = status["cells"]
        line = (
            f"  {status['status']}: {cells['done']}/{cells['total']} cells done, {cells['failed']} failed, "
            f"{cells['running']} running"
        )
        if line != shown:
            print(line, flush=True)
            shown = line
        if status["status"] in ("finished", "failed", "cancelled"):
            return status
        if time.monotonic() > deadline:
            _cancel(api, experiment_id)
            raise CliError(f"experiment {experiment_id} did not finish within {timeout:g} s; it was cancelled.")
        time.sleep(poll)


def _cancel(api: Api, experiment_id: int) -> None:
    try:
        api.post(f"experiments/{experiment_id}/cancel", {})
    except (StudioError, StudioUnavailable) as exc:
        print(f"could not cancel experiment {experiment_id}: {exc}", file=sys.stderr)


def _checks(comparison: dict[str, Any], args) -> list[tuple[str, bool, str]]:
    checks = []
    rate, p_value, n = comparison["win_rate"], comparison["p_value"], comparison["n"]
    checks.append(("rows compared", n > 0, f"{n} rows scored for both variants"))
    if args.min_win_rate is not None:
        ok = rate is not None and rate >= args.min_win_rate
        shown = "—" if rate is None else f"{rate:.3f}"
        checks.append((f"win rate >= {args.min_win_rate:g}", ok, f"{shown} ({comparison['wins']} wins, "
                       f"{comparison['losses']} losses, {comparison['ties']} ties)"))  # fmt: skip
    if args.max_p is not None:
        ok = p_value is not None and p_value <= args.max_p
        checks.append((f"p-value <= {args.max_p:g}", ok, "—" if p_value is None else f"{p_value:.4g}"))
    return checks


def _junit(context: dict[str, Any]) -> str:
    args, checks = context["args"], context["checks"]
    failures = sum(1 for _, ok, _ in checks if not ok)
    suite = f"prompt-studio eval {args.prompt}"
    cases = []
    for title, ok, detail in checks:
        case = f"    <testcase classname={quoteattr(suite)} name={quoteattr(title)}>"
        if ok:
            case += f"\n      <system-out>{escape(detail)}</system-out>\n    </testcase>"
        else:
            case += f"\n      <failure message={quoteattr(detail)}>{escape(context['comparison']['verdict'])}</failure>"
            case += "\n    </testcase>"
        cases.append(case)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<testsuites tests="{len(checks)}" failures="{failures}">\n'
        f'  <testsuite name={quoteattr(suite)} tests="{len(checks)}" failures="{failures}" errors="0">\n'
        + "\n".join(cases)
        + "\n  </testsuite>\n</testsuites>\n"
    )


def _markdown(context: dict[str, Any]) -> str:
    args, status, comparison, checks = context["args"], context["status"], context["comparison"], context["checks"]
    passed = all(ok for _, ok, _ in checks)
    lines = [
        f"## Prompt Studio gate: {args.prompt} {_label_of(args.candidate)} against {_label_of(args.against)} — "
        + ("passed ✅" if passed else "FAILED ❌"),
        "",
        f"Experiment {context['id']} on dataset `{args.dataset}`, endpoint `{args.endpoint}`, "
        f"gate evaluator `{comparison['evaluator']}`.",
        "",
        f"> {comparison['verdict']}",
        "",
        "| check | result | value |",
        "|---|---|---|",
    ]
    lines += [f"| {title} | {'✅' if ok else '❌'} | {detail} |" for title, ok, detail in checks]
    lines += ["", "| variant | prompt | done | failed | scores | p50 latency | cost |", "|---|---|---|---|---|---|---|"]
    for variant in status["variants"]:
        scores = ", ".join(f"{name}: {_mean(e['mean'])}" for name, e in variant["evaluators"].items())
        latency = "—" if variant["latency_p50_ms"] is None else f"{variant['latency_p50_ms']} ms"
        lines.append(
            f"| {variant['name']} | {variant['prompt']} | {variant['done']} | {variant['failed']} | {scores} | "
            f"{latency} | ${variant['cost']} |"
        )
    return "\n".join(lines) + "\n\n"


def _mean(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"


def cmd_snapshot(api: Api, args) -> int:
    path = Studio(api.url, api.key).save_snapshot(args.out, label=args.label)
    print(f"wrote {path}")
    return 0


# --- entry point ----------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--url", default=os.environ.get("PROMPT_STUDIO_URL", ""), help="$PROMPT_STUDIO_URL")
    common.add_argument("--key", default=os.environ.get("PROMPT_STUDIO_KEY", ""), help="$PROMPT_STUDIO_KEY")
    parser = argparse.ArgumentParser(
        prog="prompt-studio", description=__doc__.split("\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)

    pull = commands.add_parser("pull", parents=[common], help="Write prompts from the studio to files.")
    pull.add_argument("names", nargs="*", help="Prompts to pull (default: all).")
    pull.add_argument("--dir", default="prompts")
    pull.add_argument("--label", default="latest", help="Which version: a label (default latest, the newest).")
    pull.add_argument("--format", choices=["yaml", "jinja"], default="yaml", help="jinja for text prompts only.")

    push = commands.add_parser("push", parents=[common], help="Save changed prompt files as new versions.")
    push.add_argument("files", nargs="*", help="Files to push (default: every file in --dir).")
    push.add_argument("--dir", default="prompts")
    push.add_argument("--message", default="", help="The versions' message.")
    push.add_argument("--label", help="Also move this label to the pushed versions (protected labels need a review).")

    render = commands.add_parser("render", parents=[common], help="Render a prompt with variables.")
    render.add_argument("name", nargs="?")
    render.add_argument("--label", default="production")
    render.add_argument("--version", type=int)
    render.add_argument("--file", help="Render a local prompt file (no studio needed).")
    render.add_argument("--var", action="append", default=[], metavar="NAME=VALUE")
    render.add_argument("--vars-json", help="All variables as a JSON object.")

    diff = commands.add_parser("diff", parents=[common], help="Diff two versions, or a file against the studio.")
    diff.add_argument("name", nargs="?")
    diff.add_argument("old", nargs="?", help="A version number or a label.")
    diff.add_argument("new", nargs="?", help="A version number or a label.")
    diff.add_argument("--file", help="A local prompt file, diffed against --against.")
    diff.add_argument("--against", default="production")

    evaluate = commands.add_parser("eval", parents=[common], help="Run the CI gate: candidate against a baseline.")
    evaluate.add_argument("--prompt", required=True)
    evaluate.add_argument("--candidate", required=True, help="A version number or a label (latest after a push).")
    evaluate.add_argument("--against", default="production", help="The baseline: a label or a version number.")
    evaluate.add_argument("--dataset", required=True)
    evaluate.add_argument("--dataset-version", type=int)
    evaluate.add_argument("--endpoint", required=True, help="The model endpoint's name in the studio.")
    evaluate.add_argument(
        "--evaluator", action="append", required=True, metavar="[NAME=]KIND[:JSON]", help="Repeatable."
    )
    evaluate.add_argument("--gate-evaluator", help="The evaluator the gate compares on (default: the first).")
    evaluate.add_argument("--min-win-rate", type=float, help="Fail below this win rate of the candidate (0..1).")
    evaluate.add_argument("--max-p", type=float, help="Fail when the sign test's p-value is above this.")
    evaluate.add_argument("--repeats", type=int, default=1)
    evaluate.add_argument("--name", help="The experiment's name.")
    evaluate.add_argument("--timeout", type=float, default=1800, help="Seconds to wait for the experiment.")
    evaluate.add_argument("--poll", type=float, default=2.0, help="Seconds between progress checks.")
    evaluate.add_argument("--junit", help="Write a JUnit XML report here.")
    evaluate.add_argument("--summary", help="Append a Markdown summary here (default: $GITHUB_STEP_SUMMARY).")

    snapshot = commands.add_parser("snapshot", parents=[common], help="Write every released prompt to a file.")
    snapshot.add_argument("--label", default="production")
    snapshot.add_argument("--out", required=True)
    return parser


COMMANDS = {
    "pull": cmd_pull,
    "push": cmd_push,
    "render": cmd_render,
    "diff": cmd_diff,
    "eval": cmd_eval,
    "snapshot": cmd_snapshot,
}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        offline = args.command == "render" and args.file
        api = None if offline else Api(args.url, args.key)
        return COMMANDS[args.command](api, args)
    except CliError as exc:
        print(f"error: {exc}", file=sys.stderr)
    except StudioError as exc:
        print(f"error: the studio answered {exc.status} {exc.code}: {exc.detail}", file=sys.stderr)
    except StudioUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
