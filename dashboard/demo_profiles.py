"""Standard residential load profile shapes for the demo data.

Hourly mean power in W per 1,000 kWh/a, approximating the BDEW H0 standard load profile (the German
utilities' standard for households) for its three day types (workday, Saturday, Sunday/holiday) and
two of its seasons (winter, summer; transition is their mean), plus the H0 dynamisation polynomial
over the day of the year. Values are interpolated to 15 minutes by the generator.
"""

from __future__ import annotations

import numpy as np

# fmt: off
H0_HOURLY_W = {
    ("winter", "workday"): [67, 57, 52, 50, 50, 55, 77, 107, 120, 120, 122, 132,
                            147, 140, 125, 115, 122, 157, 187, 190, 175, 155, 130, 95],
    ("winter", "saturday"): [75, 62, 55, 52, 51, 53, 62, 85, 118, 140, 150, 158,
                             165, 155, 138, 128, 133, 160, 185, 185, 172, 158, 138, 105],
    ("winter", "sunday"): [80, 66, 58, 54, 52, 52, 56, 68, 100, 135, 160, 178,
                           190, 168, 140, 125, 127, 150, 175, 178, 165, 150, 128, 98],
    ("summer", "workday"): [70, 58, 52, 50, 50, 52, 67, 90, 102, 105, 108, 118,
                            130, 125, 112, 105, 108, 122, 138, 140, 138, 140, 125, 95],
    ("summer", "saturday"): [78, 64, 56, 53, 51, 52, 58, 75, 100, 120, 130, 138,
                             145, 135, 120, 112, 115, 128, 140, 142, 140, 140, 128, 100],
    ("summer", "sunday"): [82, 68, 59, 55, 52, 51, 54, 62, 88, 118, 140, 155,
                           165, 145, 122, 110, 110, 122, 135, 140, 140, 140, 125, 96],
}
# fmt: on


def season_weights(day_of_year: np.ndarray) -> np.ndarray:
    """Weight of the winter shape (1 in January, 0 in July), smooth over the year."""
    return 0.5 + 0.5 * np.cos(2 * np.pi * (day_of_year - 15) / 365.25)


def dynamisation(day_of_year: np.ndarray) -> np.ndarray:
    """BDEW H0 dynamisation factor F(d) = -3.92e-10 d^4 + 3.2e-7 d^3 - 7.02e-5 d^2 + 2.1e-3 d + 1.24."""
    d = day_of_year.astype(float)
    return -3.92e-10 * d**4 + 3.2e-7 * d**3 - 7.02e-5 * d**2 + 2.1e-3 * d + 1.24


def h0_power_w(local_hour: np.ndarray, day_type: np.ndarray, day_of_year: np.ndarray) -> np.ndarray:
    """H0 mean power (W per 1,000 kWh/a) at fractional local hours, for day types 0/1/2
    (workday/Saturday/Sunday-or-holiday), blending winter and summer by the day of the year."""
    names = ("workday", "saturday", "sunday")
    hours = np.arange(25)
    out = np.zeros_like(local_hour, dtype=float)
    w = season_weights(day_of_year)
    for code, name in enumerate(names):
        mask = day_type == code
        if not mask.any():
            continue
        winter = np.array(H0_HOURLY_W[("winter", name)] + H0_HOURLY_W[("winter", name)][:1], dtype=float)
        summer = np.array(H0_HOURLY_W[("summer", name)] + H0_HOURLY_W[("summer", name)][:1], dtype=float)
        # hourly means are centred on the half hour
        h = (local_hour[mask] - 0.5) % 24
        wv = np.interp(h, hours, winter)
        sv = np.interp(h, hours, summer)
        out[mask] = w[mask] * wv + (1 - w[mask]) * sv
    return out * dynamisation(day_of_year)
