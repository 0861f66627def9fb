from django.db import models


class WorkerHeartbeat(models.Model):
    """The last time each Celery worker answered; /healthz and the admin show it."""

    hostname = models.CharField(max_length=200, unique=True)
    seen_at = models.DateTimeField()
    token = models.CharField(max_length=64, blank=True)

    def __str__(self) -> str:
        return f"{self.hostname} at {self.seen_at:%H:%M:%S}"
