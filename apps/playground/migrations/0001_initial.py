# Runs and results moved here from apps.providers. Only the migration state moves: the tables keep their
# names (db_table), so no row is copied; the content types follow so admin history and permissions stay.

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


def _relabel(apps, old: str, new: str) -> None:
    content_type = apps.get_model("contenttypes", "ContentType")
    for model in ("playgroundrun", "playgroundresult"):
        if not content_type.objects.filter(app_label=new, model=model).exists():
            content_type.objects.filter(app_label=old, model=model).update(app_label=new)


def _move_content_types(apps, schema_editor) -> None:
    _relabel(apps, "providers", "playground")


def _move_content_types_back(apps, schema_editor) -> None:
    _relabel(apps, "playground", "providers")


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("accounts", "0002_api_keys"),
        ("prompts", "0001_initial"),
        ("providers", "0004_playground_moves_out"),
        ("contenttypes", "0002_remove_content_type_name"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="PlaygroundRun",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                            ),
                        ),
                        ("content", models.JSONField()),
                        ("variables", models.JSONField(default=dict)),
                        ("created_at", models.DateTimeField(auto_now_add=True)),
                        (
                            "created_by",
                            models.ForeignKey(
                                null=True,
                                on_delete=django.db.models.deletion.SET_NULL,
                                related_name="+",
                                to=settings.AUTH_USER_MODEL,
                            ),
                        ),
                        (
                            "project",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="playground_runs",
                                to="accounts.project",
                            ),
                        ),
                        (
                            "version",
                            models.ForeignKey(
                                blank=True,
                                null=True,
                                on_delete=django.db.models.deletion.SET_NULL,
                                related_name="+",
                                to="prompts.promptversion",
                            ),
                        ),
                    ],
                    options={
                        "db_table": "providers_playgroundrun",
                        "ordering": ["-created_at", "-id"],
                    },
                ),
                migrations.CreateModel(
                    name="PlaygroundResult",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                            ),
                        ),
                        ("endpoint_name", models.CharField(max_length=100)),
                        ("model", models.CharField(max_length=200)),
                        (
                            "status",
                            models.CharField(
                                choices=[
                                    ("queued", "queued"),
                                    ("running", "running"),
                                    ("done", "done"),
                                    ("failed", "failed"),
                                ],
                                default="queued",
                                max_length=16,
                            ),
                        ),
                        (
                            "request",
                            models.JSONField(
                                default=dict, help_text="Exactly what was sent: messages or prompt, and parameters."
                            ),
                        ),
                        ("output", models.TextField(blank=True)),
                        ("finish_reason", models.CharField(blank=True, max_length=40)),
                        ("tokens_in", models.PositiveIntegerField(blank=True, null=True)),
                        ("tokens_out", models.PositiveIntegerField(blank=True, null=True)),
                        ("cost", models.DecimalField(blank=True, decimal_places=8, max_digits=14, null=True)),
                        ("latency_ms", models.PositiveIntegerField(blank=True, null=True)),
                        ("attempts", models.PositiveSmallIntegerField(default=0)),
                        ("provider_request_id", models.CharField(blank=True, max_length=200)),
                        ("streamed", models.BooleanField(default=False)),
                        ("time_to_first_token_ms", models.PositiveIntegerField(blank=True, null=True)),
                        (
                            "tokens_estimated",
                            models.BooleanField(
                                default=False,
                                help_text="The provider sent no usage: tokens were counted with the model's tokenizer.",
                            ),
                        ),
                        ("error_kind", models.CharField(blank=True, max_length=32)),
                        ("error_message", models.TextField(blank=True)),
                        ("started_at", models.DateTimeField(blank=True, null=True)),
                        ("finished_at", models.DateTimeField(blank=True, null=True)),
                        (
                            "endpoint",
                            models.ForeignKey(
                                null=True,
                                on_delete=django.db.models.deletion.SET_NULL,
                                related_name="+",
                                to="providers.modelendpoint",
                            ),
                        ),
                        (
                            "run",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="results",
                                to="playground.playgroundrun",
                            ),
                        ),
                    ],
                    options={
                        "db_table": "providers_playgroundresult",
                        "ordering": ["id"],
                    },
                ),
            ],
            database_operations=[],
        ),
        migrations.RunPython(_move_content_types, _move_content_types_back),
    ]
