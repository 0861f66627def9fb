# The shared limiter's models, owned by the providers app from now on; their tables were made by the
# experiments app and keep their names, so nothing changes in the database.

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("providers", "0004_playground_moves_out"),
        ("experiments", "0002_limits_move_to_providers"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="EndpointSlot",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                            ),
                        ),
                        ("endpoint_id", models.BigIntegerField(db_index=True)),
                        ("holder", models.CharField(max_length=32)),
                        ("expires_at", models.DateTimeField()),
                    ],
                    options={"db_table": "experiments_endpointslot"},
                ),
                migrations.CreateModel(
                    name="EndpointRateWindow",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                            ),
                        ),
                        ("endpoint_id", models.BigIntegerField()),
                        ("window", models.BigIntegerField(help_text="Minutes since the epoch.")),
                        ("count", models.PositiveIntegerField(default=0)),
                    ],
                    options={
                        "db_table": "experiments_endpointratewindow",
                        "constraints": [
                            models.UniqueConstraint(fields=("endpoint_id", "window"), name="rate_window_unique")
                        ],
                    },
                ),
            ],
            database_operations=[],
        ),
    ]
