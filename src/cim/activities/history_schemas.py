"""The typed shape of orders, products and interactions, shared by the API, the pages and the importers."""

from datetime import datetime
from decimal import Decimal
from typing import Annotated

from django.utils import timezone
from pydantic import AfterValidator, BaseModel, Field, model_validator

from cim.activities.models import Interaction, Order

Money = Annotated[Decimal, Field(max_digits=14, decimal_places=2)]
Currency = Annotated[str, Field(pattern=r"^[A-Z]{3}$"), AfterValidator(str.upper)]


def _aware(value: datetime | None) -> datetime | None:
    """A time without a zone is taken in the installation's zone (what a person in the shop means)."""
    if value is None or value.tzinfo is not None:
        return value
    return timezone.make_aware(value)


When = Annotated[datetime, AfterValidator(_aware)]


class ProductInput(BaseModel):
    sku: str = Field(min_length=1, max_length=64)
    name: str = Field(min_length=1, max_length=200)
    category: str = Field("", max_length=100)
    price: Money | None = Field(None, ge=0)
    currency: Currency = "CNY"
    is_active: bool = True


class OrderLineInput(BaseModel):
    sku: str = Field("", max_length=64)
    name: str = Field("", max_length=200)
    quantity: Annotated[Decimal, Field(gt=0, max_digits=12, decimal_places=3)] = Decimal(1)
    # Taken from the catalogue when the SKU is known and no price is given.
    unit_price: Money | None = Field(None, ge=0)
    discount: Money = Field(Decimal(0), ge=0)

    @model_validator(mode="after")
    def _named(self):
        if not (self.sku or self.name):
            raise ValueError("A line needs a SKU or a product name.")
        return self


class OrderInput(BaseModel):
    # Empty: CIM gives the order a number of its own.
    number: str = Field("", max_length=64)
    system: str = Field("", max_length=50)
    status: Order.Status = Order.Status.PAID
    channel: str = Field("", max_length=50)
    store: str = Field("", max_length=100)
    currency: Currency = "CNY"
    ordered_at: When | None = None
    discount: Money = Field(Decimal(0), ge=0)
    # For an order that arrives already (partly) refunded, e.g. from a shop's export.
    refunded: Money = Field(Decimal(0), ge=0)
    lines: list[OrderLineInput] = Field(min_length=1, max_length=500)


class RefundInput(BaseModel):
    # Empty: everything not yet refunded.
    amount: Money | None = Field(None, gt=0)
    reason: str = Field("", max_length=200)
    refunded_at: When | None = None


class InteractionInput(BaseModel):
    kind: Interaction.Kind
    direction: Interaction.Direction = Interaction.Direction.NONE
    occurred_at: When | None = None
    duration_minutes: int | None = Field(None, ge=0, le=24 * 60)
    subject: str = Field("", max_length=200)
    body: str = Field("", max_length=20000)
    outcome: Interaction.Outcome = Interaction.Outcome.NONE
    staff: list[str] = Field(default_factory=list, max_length=20, description="usernames of staff present")
    contacts: list[Annotated[str, Field(max_length=100)]] = Field(default_factory=list, max_length=20)
