from django.db import models


class WorkerHeartbeat(models.Model):
    """The last time each Celery worker or beat process said it was alive; /healthz and the admin show it.

    A thread in each worker's main process and in beat writes its row every HEARTBEAT_SECONDS, so a killed
    or frozen process goes stale within HEARTBEAT_STALE_SECONDS whatever the queues are doing.
    """

    class Role(models.TextChoices):
        WORKER = "worker", "worker"
        BEAT = "beat", "beat"

    hostname = models.CharField(max_length=200, unique=True)
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.WORKER)
    pid = models.PositiveIntegerField(null=True, blank=True)
    seen_at = models.DateTimeField()
    token = models.CharField(max_length=64, blank=True)

    def __str__(self) -> str:
        return f"{self.role} {self.hostname} at {self.seen_at:%H:%M:%S}"
