"""Costs become CostFields: numeric on PostgreSQL as before (no change there), exact integers on SQLite.

On SQLite the column changes from a float ("decimal") to an INTEGER count of
10^-decimal_places dollars; the values already stored are converted in place.
"""

from django.db import migrations

import apps.core.fields

# (table, column, decimal places)
COLUMNS = [
    ("experiments_experiment", "estimated_cost", 6),
    ("experiments_experiment", "total_cost", 6),
    ("experiments_cell", "cost", 8),
]


def floats_to_units(apps, schema_editor):
    if schema_editor.connection.vendor != "sqlite":
        return
    for table, column, places in COLUMNS:
        # Names and numbers from COLUMNS above, nothing from users.
        sql = f'UPDATE "{table}" SET "{column}" = CAST(ROUND("{column}" * {10**places}) AS INTEGER)'  # noqa: S608
        schema_editor.execute(f'{sql} WHERE "{column}" IS NOT NULL')


def units_to_floats(apps, schema_editor):
    if schema_editor.connection.vendor != "sqlite":
        return
    for table, column, places in COLUMNS:
        sql = f'UPDATE "{table}" SET "{column}" = "{column}" / {float(10**places)}'  # noqa: S608
        schema_editor.execute(f'{sql} WHERE "{column}" IS NOT NULL')


class Migration(migrations.Migration):
    dependencies = [("experiments", "0001_initial")]

    operations = [
        migrations.AlterField(
            model_name="experiment",
            name="estimated_cost",
            field=apps.core.fields.CostField(blank=True, decimal_places=6, max_digits=14, null=True),
        ),
        migrations.AlterField(
            model_name="experiment",
            name="total_cost",
            field=apps.core.fields.CostField(decimal_places=6, default=0, max_digits=14),
        ),
        migrations.AlterField(
            model_name="cell",
            name="cost",
            field=apps.core.fields.CostField(blank=True, decimal_places=8, max_digits=14, null=True),
        ),
        migrations.RunPython(floats_to_units, units_to_floats),
    ]
