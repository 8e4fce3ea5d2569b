"""Experiment statistics for the Critic: pure, typed functions over summary statistics.

No I/O and no randomness: every function takes counts or means and returns a pydantic model, so
each one can be exposed as a tool and its output stored in workflow history as is.

Which function when:
* ``check_srm``: first, on assignment counts; a mismatch means nothing else may be read.
* ``two_proportion_test`` / ``welch_t_test`` (``compare`` dispatches on the metric kind):
  fixed-horizon effect, delta-method relative interval and p-value, read once at the planned n.
* ``always_valid_test``: the same estimate read at any look, for peeking without inflation.
* ``beta_binomial``: chance to win and expected loss of a conversion metric.
* ``check_guardrail``: one-sided "did it get worse (beyond the margin)?" per guardrail.
* ``adjust_p_values``: Holm or Benjamini-Hochberg across primary/secondary metrics.
* ``check_minimum_sample``: the minimum data before any call.
* ``sample_size_*`` / ``power_*`` / ``mde_*``: planning, and explaining an inconclusive result.
* ``decide``: all of the above in the reference order, returning a ``Verdict``.
"""

from activities.stats.arms import ContinuousMetric, ConversionMetric, MeanArm, Metric, ProportionArm
from activities.stats.bayesian import BetaBinomialResult, beta_binomial
from activities.stats.corrections import CorrectionMethod, CorrectionResult, adjust_p_values
from activities.stats.effects import EffectEstimate, compare, two_proportion_test, welch_t_test
from activities.stats.errors import StatsInputError
from activities.stats.guardrails import Guardrail, GuardrailResult, check_guardrail
from activities.stats.power import (
    MdeResult,
    PowerAnalysis,
    mde_means,
    mde_proportions,
    power_at,
    power_means,
    power_proportions,
    sample_size_means,
    sample_size_proportions,
)
from activities.stats.sample_guard import SampleGuardResult, check_minimum_sample
from activities.stats.sequential import (
    SequentialResult,
    always_valid_p_value,
    always_valid_test,
    mixing_rho,
    sequential_critical_value,
)
from activities.stats.srm import SrmResult, check_srm
from activities.stats.verdict import Decision, DecisionSettings, ExperimentSnapshot, Verdict, decide

__all__ = [
    "BetaBinomialResult",
    "ContinuousMetric",
    "ConversionMetric",
    "CorrectionMethod",
    "CorrectionResult",
    "Decision",
    "DecisionSettings",
    "EffectEstimate",
    "ExperimentSnapshot",
    "Guardrail",
    "GuardrailResult",
    "MdeResult",
    "MeanArm",
    "Metric",
    "PowerAnalysis",
    "ProportionArm",
    "SampleGuardResult",
    "SequentialResult",
    "SrmResult",
    "StatsInputError",
    "Verdict",
    "adjust_p_values",
    "always_valid_p_value",
    "always_valid_test",
    "beta_binomial",
    "check_guardrail",
    "check_minimum_sample",
    "check_srm",
    "compare",
    "decide",
    "mde_means",
    "mde_proportions",
    "mixing_rho",
    "power_at",
    "power_means",
    "power_proportions",
    "sample_size_means",
    "sample_size_proportions",
    "sequential_critical_value",
    "two_proportion_test",
    "welch_t_test",
]
