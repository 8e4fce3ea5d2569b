"""Experiment statistics for the Critic: pure, typed functions over summary statistics.

No I/O and no randomness: every function takes counts or means and returns a pydantic model, so
each one can be exposed as a tool and its output stored in workflow history as is.

Every number is checked finite where it enters (the models refuse inf and NaN), and every
refusal is a ``StatsInputError`` (or a pydantic error) naming the field.

Which function when:
* ``check_srm``: first, on assignment counts; a mismatch means nothing else may be read. Use
  ``method="fixed"`` (chi-square) for one read, ``"sequential"`` (Dirichlet-multinomial,
  always-valid) when it is read every day. Assessed once the *total* is large enough.
* ``compare``: the fixed-horizon effect of one treatment against control, dispatching on the
  metric kind: ``two_proportion_test`` (conversions), ``welch_t_test`` (means; winsorised values
  are taken as given), the delta method for ``RatioMetric`` (``ratio_as_mean_arm``), and CUPED
  (``cuped_adjust``, theta pooled over the two arms) when both arms carry a ``Covariate``.
  Decisions use its ``decision_p_value``, on the same scale as the interval.
* ``always_valid_test``: the same estimate read at any look, for peeking without inflation.
* ``beta_binomial`` / ``beta_readout``: exact chance to beat control, expected loss and credible
  interval of a conversion metric; ``normal_readout``: the normal approximation for the rest.
* ``check_guardrail``: one-sided "did it get worse (beyond the margin)?" per guardrail; pass
  ``sequential_tuning`` whenever it is read on every look.
* ``adjust_p_values``: Holm or Benjamini-Hochberg across treatments and metrics.
* ``check_minimum_sample``: the minimum data before any call.
* ``sample_size_*`` / ``power_*`` / ``mde_*``: planning (for the test that will be run: pass
  ``sequential_tuning`` for a sequential read and ``relative_test=True`` for the relative-lift
  test the verdict runs), and explaining an inconclusive result.
* ``decide``: all of the above in the reference order for one control and any number of
  treatments, returning a ``Verdict`` that names the winning arm or none.
"""

from activities.stats.arms import (
    ContinuousMetric,
    ConversionMetric,
    Covariate,
    MeanArm,
    Metric,
    ProportionArm,
    RatioArm,
    RatioMetric,
)
from activities.stats.bayesian import BayesianReadout, BetaBinomialResult, beta_binomial, beta_readout, normal_readout
from activities.stats.corrections import CorrectionMethod, CorrectionResult, adjust_p_values
from activities.stats.cuped import CupedAdjustment, cuped_adjust, pooled_theta
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
from activities.stats.ratio import ratio_as_mean_arm, ratio_variance
from activities.stats.sample_guard import SampleGuardResult, check_minimum_sample
from activities.stats.sequential import (
    SequentialResult,
    always_valid_p_value,
    always_valid_test,
    mixing_rho,
    sequential_critical_value,
)
from activities.stats.srm import SrmMethod, SrmResult, check_srm, sequential_srm_p_value
from activities.stats.verdict import ArmVerdict, Decision, DecisionSettings, ExperimentSnapshot, Verdict, decide

__all__ = [
    "ArmVerdict",
    "BayesianReadout",
    "BetaBinomialResult",
    "ContinuousMetric",
    "ConversionMetric",
    "CorrectionMethod",
    "CorrectionResult",
    "Covariate",
    "CupedAdjustment",
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
    "RatioArm",
    "RatioMetric",
    "SampleGuardResult",
    "SequentialResult",
    "SrmMethod",
    "SrmResult",
    "StatsInputError",
    "Verdict",
    "adjust_p_values",
    "always_valid_p_value",
    "always_valid_test",
    "beta_binomial",
    "beta_readout",
    "check_guardrail",
    "check_minimum_sample",
    "check_srm",
    "compare",
    "cuped_adjust",
    "decide",
    "mde_means",
    "mde_proportions",
    "mixing_rho",
    "normal_readout",
    "pooled_theta",
    "power_at",
    "power_means",
    "power_proportions",
    "ratio_as_mean_arm",
    "ratio_variance",
    "sample_size_means",
    "sample_size_proportions",
    "sequential_critical_value",
    "sequential_srm_p_value",
    "two_proportion_test",
    "welch_t_test",
]
