from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("core", "0001_worker_heartbeat")]

    operations = [
        migrations.AddField(
            model_name="workerheartbeat",
            name="role",
            field=models.CharField(choices=[("worker", "worker"), ("beat", "beat")], default="worker", max_length=10),
        ),
        migrations.AddField(
            model_name="workerheartbeat",
            name="pid",
            field=models.PositiveIntegerField(blank=True, null=True),
        ),
    ]
