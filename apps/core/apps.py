from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "apps.core"
    label = "core"
    verbose_name = "Studio core"

    def ready(self) -> None:
        from django.db import connections

        # PostgreSQL's bulk_create sends many rows as one array per column (INSERT ... SELECT FROM UNNEST) only
        # when it knows every field's type by name: name the cost field's there, as its db_type writes it.
        # Without this, every model with a cost sent one placeholder per value (46,000 for 2,000 cells).
        for alias in connections:
            wrapper = type(connections[alias])
            if wrapper.vendor == "postgresql":
                wrapper.data_types.setdefault("CostField", "numeric(%(max_digits)s, %(decimal_places)s)")
