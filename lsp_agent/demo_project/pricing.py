"""Prices for the shop's checkout."""

from dataclasses import dataclass


@dataclass
class LineItem:
    name: str
    unit_price: float
    quantity: int = 1

    def subtotal(self) -> float:
        return self.unit_price * self.quantity


def apply_discount(price: float, percent: float) -> float:
    """Return ``price`` reduced by ``percent`` (a number from 0 to 100)."""
    if not 0 <= percent <= 100:
        raise ValueError(f"discount must be between 0 and 100, got {percent}")
    return price - price * percent


def order_total(items: list[LineItem], discount_percent: float = 0) -> float:
    gross = sum(item.subtotal() for item in items)
    return round(apply_discount(gross, discount_percent), 2)
