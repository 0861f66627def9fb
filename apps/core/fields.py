"""Model fields shared by the apps."""

from __future__ import annotations

from decimal import Decimal

from django.db import models


class CostField(models.DecimalField):
    """A cost in dollars, stored exactly on both databases and read back as a Decimal.

    PostgreSQL keeps it as numeric(max_digits, decimal_places). SQLite has no
    decimal type: its "decimal" columns hold binary floats, so a stored cost
    and every sum over costs came back with float noise (0.00218294999999999).
    There the column is an INTEGER count of 10^-decimal_places dollars, which
    SQLite adds up exactly, and reads turn it back into a Decimal.
    """

    def get_internal_type(self) -> str:
        # Its own type, so neither SQLite's float-based decimal converter nor Django's int()/Decimal()
        # conversion of expressions touches the value before from_db_value; db_type says what the column is.
        return "CostField"

    def db_type(self, connection) -> str:
        if connection.vendor == "sqlite":
            return "integer"
        return f"numeric({self.max_digits}, {self.decimal_places})"

    def get_db_prep_value(self, value, connection, prepared=False):
        if hasattr(value, "as_sql"):
            return value
        value = self.to_python(value)
        if value is None:
            return None
        if connection.vendor == "sqlite":
            return int(value.scaleb(self.decimal_places).to_integral_value())
        return connection.ops.adapt_decimalfield_value(value, self.max_digits, self.decimal_places)

    def from_db_value(self, value, expression, connection) -> Decimal | None:
        if value is None:
            return None
        if connection.vendor == "sqlite":
            units = Decimal(value) if isinstance(value, int) else Decimal(repr(float(value)))
            return units.scaleb(-self.decimal_places).quantize(Decimal(1).scaleb(-self.decimal_places))
        return value if isinstance(value, Decimal) else Decimal(str(value))
