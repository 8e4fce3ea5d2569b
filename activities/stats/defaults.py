"""Reference defaults, in one place so a team can change a threshold without hunting for it.

Unless noted, the numbers are GrowthBook's (`packages/shared/src/constants.ts`), as collected in
the experimentation reference notes (section B.3).
"""

from __future__ import annotations

#: Two-sided significance level for primary and secondary metrics.
ALPHA = 0.05
#: One-sided level of the "did it get worse?" test on each guardrail.
GUARDRAIL_ALPHA = 0.05
#: Target power when planning a sample size or reporting an MDE.
POWER = 0.80
#: Relative lift an experiment is planned to detect when nobody says otherwise.
TARGET_MDE = 0.10

#: Sample ratio mismatch gate: chi-square p-value below this means the split is broken.
SRM_P_THRESHOLD = 0.001
#: The SRM test is only trusted once every arm is *expected* to hold this many units, i.e. once
#: the total reaches SRM_MIN_COUNT / (smallest configured share): gated on the total, as GrowthBook
#: does, so an arm that receives nobody is a mismatch rather than "not enough data".
SRM_MIN_COUNT = 8
#: Sequential SRM (Lindon & Malek 2022): concentration of the Dirichlet prior around the configured
#: split (GrowthBook's and Optimizely's default; larger doubts small deviations more).
SRM_SEQUENTIAL_CONCENTRATION = 10_000.0

#: Units per arm before any verdict is called.
MIN_UNITS_PER_ARM = 150
#: Conversions (and non-conversions) per arm for the normal approximation: PostHog's np > 5 and
#: n(1-p) > 5, i.e. at least 6 of each.
MIN_CONVERSIONS_PER_ARM = 6
#: Days an experiment must run before it can ship (covers at least part of a weekly cycle).
MIN_DAYS = 3.0

#: Sequential testing tuning parameter: the total sample size at which the confidence sequence
#: is tightest. Set it to the expected decision sample size.
SEQUENTIAL_TUNING = 5000.0

#: Bayesian read-out: ship when the chance to beat control reaches this.
CHANCE_TO_WIN_THRESHOLD = 0.95
#: Relative expected loss below which choosing a variant is low risk.
WIN_RISK = 0.0025
#: Relative expected loss above which choosing a variant is high risk.
LOSE_RISK = 0.0125

#: A relative change larger than this is flagged as suspicious (check the data before acting).
MAX_BELIEVABLE_LIFT = 0.5
