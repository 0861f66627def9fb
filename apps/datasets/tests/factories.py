import factory

from apps.accounts.tests.factories import ProjectFactory, UserFactory
from apps.datasets import services
from apps.datasets.models import Dataset


class DatasetFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Dataset

    project = factory.SubFactory(ProjectFactory)
    name = factory.Sequence(lambda n: f"dataset-{n}")


def record(actor_input=None, expected=None, metadata=None, **inputs):
    return {"input": actor_input or inputs, "expected": expected, "metadata": metadata or {}}


def make_dataset_version(dataset, records, *, actor=None, message="test data"):
    """Save a version through the real service."""
    return services.dataset_version_create_from_records(
        dataset=dataset, records=records, message=message, actor=actor or UserFactory()
    )
