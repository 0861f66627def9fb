# The playground's runs and results moved to apps.playground; their tables stay where they are.

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("providers", "0003_endpoint_check"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.DeleteModel(name="PlaygroundResult"),
                migrations.DeleteModel(name="PlaygroundRun"),
            ],
            database_operations=[],
        ),
    ]
