# The shared limiter's tables move to the providers app (the gateway takes the slots now): the tables
# stay where they are, under their names, and only Django's idea of which app owns them changes.

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("experiments", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.DeleteModel(name="EndpointSlot"),
                migrations.DeleteModel(name="EndpointRateWindow"),
            ],
            database_operations=[],
        ),
    ]
