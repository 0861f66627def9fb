# Webhooks and deliveries moved here from apps.reviews. Only the migration state moves: the tables keep their
# names (db_table), so no row is copied; the content types follow so admin history and permissions stay.

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

import apps.webhooks.models


def _relabel(apps, old: str, new: str) -> None:
    content_type = apps.get_model("contenttypes", "ContentType")
    for model in ("webhook", "webhookdelivery"):
        if not content_type.objects.filter(app_label=new, model=model).exists():
            content_type.objects.filter(app_label=old, model=model).update(app_label=new)


def _move_content_types(apps, schema_editor) -> None:
    _relabel(apps, "reviews", "webhooks")


def _move_content_types_back(apps, schema_editor) -> None:
    _relabel(apps, "webhooks", "reviews")


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("reviews", "0002_webhooks_move_out"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("accounts", "0002_api_keys"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="Webhook",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                            ),
                        ),
                        ("url", models.CharField(max_length=500)),
                        ("events", models.JSONField(default=list)),
                        ("secret", models.CharField(default=apps.webhooks.models.new_webhook_secret, max_length=64)),
                        ("active", models.BooleanField(default=True)),
                        ("description", models.CharField(blank=True, max_length=200)),
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
                                related_name="webhooks",
                                to="accounts.project",
                            ),
                        ),
                    ],
                    options={
                        "db_table": "reviews_webhook",
                        "ordering": ["created_at", "id"],
                    },
                ),
                migrations.CreateModel(
                    name="WebhookDelivery",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                            ),
                        ),
                        ("event", models.CharField(max_length=40)),
                        ("delivery_id", models.CharField(max_length=36, unique=True)),
                        ("body", models.TextField()),
                        (
                            "status",
                            models.CharField(
                                choices=[
                                    ("pending", "pending"),
                                    ("retrying", "retrying"),
                                    ("succeeded", "succeeded"),
                                    ("failed", "failed"),
                                ],
                                default="pending",
                                max_length=12,
                            ),
                        ),
                        ("attempts", models.PositiveSmallIntegerField(default=0)),
                        ("response_code", models.PositiveSmallIntegerField(blank=True, null=True)),
                        ("last_error", models.CharField(blank=True, max_length=500)),
                        ("created_at", models.DateTimeField(auto_now_add=True)),
                        ("last_attempt_at", models.DateTimeField(blank=True, null=True)),
                        ("delivered_at", models.DateTimeField(blank=True, null=True)),
                        (
                            "webhook",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="deliveries",
                                to="webhooks.webhook",
                            ),
                        ),
                    ],
                    options={
                        "verbose_name_plural": "webhook deliveries",
                        "db_table": "reviews_webhookdelivery",
                        "ordering": ["-created_at", "-id"],
                    },
                ),
            ],
            database_operations=[],
        ),
        migrations.RunPython(_move_content_types, _move_content_types_back),
    ]
