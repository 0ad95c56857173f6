"""Numeric options: finite, typed and within bounds, with a message that names the option and the range."""

import math


def check_number(
    name: str,
    value,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    integer: bool = False,
    exclusive_minimum: bool = False,
    allow_none: bool = False,
):
    """A finite number (an `int` when `integer`) within bounds; the message names the option and the range."""
    if value is None and allow_none:
        return value
    low = "" if minimum is None else (f"> {minimum}" if exclusive_minimum else f">= {minimum}")
    high = "" if maximum is None else f"<= {maximum}"
    kind = "an integer" if integer else "a finite number"
    allowed = " and ".join(p for p in (low, high) if p)
    allowed = f"{kind} {allowed}".strip()
    is_number = isinstance(value, int) if integer else isinstance(value, (int, float))
    if isinstance(value, bool) or not is_number or not math.isfinite(value):
        raise ValueError(f"{name} must be {allowed}, got {value!r}.")
    too_low = minimum is not None and (value <= minimum if exclusive_minimum else value < minimum)
    if too_low or (maximum is not None and value > maximum):
        raise ValueError(f"{name} must be {allowed}, got {value!r}.")
    return value


__all__ = ["check_number"]
