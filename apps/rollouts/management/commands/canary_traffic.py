"""Send simulated production traffic to a prompt's label and watch its canary promote or roll back.

    .venv/bin/python manage.py canary_traffic --prompt support-reply --canary-errors 0.2

Runs against the studio that `make run` serves (--url), with a fresh ingest key of the project (revoked at
the end) and a local simulated model server; after each batch it lets the watcher look (as the beat task
does every ROLLOUT_WATCH_SECONDS) and prints the canary's state.
"""

from __future__ import annotations

import time

from django.core.management.base import BaseCommand, CommandError

from apps.accounts.models import Project
from apps.accounts.services import api_key_create, api_key_revoke
from apps.rollouts import selectors, services, traffic


class Command(BaseCommand):
    help = "Simulated traffic (through the Python client) for a canary; prints each step the watcher takes."

    def add_arguments(self, parser):
        parser.add_argument("--project", default="demo")
        parser.add_argument("--prompt", default="support-reply")
        parser.add_argument("--label", default="production")
        parser.add_argument("--url", default="http://127.0.0.1:8000", help="the studio (make run's address)")
        parser.add_argument("--calls", type=int, default=5000)
        parser.add_argument("--batch", type=int, default=200)
        parser.add_argument("--canary-errors", type=float, default=0.0, help="share of canary calls that fail")
        parser.add_argument("--errors", type=float, default=0.02, help="share of stable calls that fail")
        parser.add_argument("--feedback", type=float, default=0.3, help="share of calls that get a thumbs score")
        parser.add_argument("--no-watch", action="store_true", help="leave the looking to the beat task")
        parser.add_argument("--settle", type=float, default=2.0, help="seconds for the worker to ingest a batch")

    def handle(self, *args, **options):
        from prompt_studio import Studio

        from apps.providers.testing.server import ModelServer

        project = Project.objects.filter(slug=options["project"]).first()
        if project is None:
            raise CommandError(f"No project '{options['project']}'.")
        key_row, key = api_key_create(project=project, name="canary traffic", scope="ingest", actor="canary_traffic")
        server = ModelServer(host="127.0.0.1", port=0).start()
        studio = Studio(options["url"], key, ttl=1.0, max_stale=5.0)
        studio.configure_tracing(flush_interval=0.2)

        def after_batch(sent: int, stats: traffic.TrafficStats) -> bool:
            time.sleep(options["settle"])
            rollout = selectors.active_for(project_id=project.pk).filter(prompt__name=options["prompt"]).first()
            if rollout is None:
                self.stdout.write(f"{sent} calls ({stats.line()}); no canary running on {options['prompt']}")
                return True
            outcome = "not looked" if options["no_watch"] else services.rollout_evaluate(rollout_id=rollout.pk)
            rollout.refresh_from_db()
            self.stdout.write(
                f"{sent} calls ({stats.line()}); canary v{rollout.canary_version.number} "
                f"at {rollout.weight / 100:g}%: {outcome} ({rollout.get_status_display()})"
            )
            for g in (rollout.last_evidence or {}).get("guardrails", []):
                self.stdout.write(f"    {g['metric']}: difference {g['difference']} interval {g['interval']}")
            return rollout.is_active

        try:
            stats = traffic.run(
                studio=studio, model_url=server.url, prompt_name=options["prompt"], label=options["label"],
                calls=options["calls"], batch=options["batch"], canary_errors=options["canary_errors"],
                errors=options["errors"], feedback=options["feedback"], after_batch=after_batch,
            )  # fmt: skip
        finally:
            server.stop()
            api_key_revoke(api_key=key_row, actor="canary_traffic", reason="traffic script finished")
        self.stdout.write(self.style.SUCCESS(f"Done: {stats.line()}"))
