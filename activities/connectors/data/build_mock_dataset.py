"""Build `mock_dataset.json`, the mock connector's data, from a fixed seed.

    .venv/bin/python activities/connectors/data/build_mock_dataset.py            # rewrite the file
    .venv/bin/python activities/connectors/data/build_mock_dataset.py --check    # exit 1 if stale

The JSON is the dataset (the mock connector and `warehouse.load_mock_dataset` read only it); this
script is how it was made, so the story can be changed on purpose and re-generated exactly. A test
checks that the stored file is what this script produces.

The story (numbers are computed below and written into the file's "story" section):

- "Shopwise", an online shop with a web site and iOS and Android apps, sold in US, GB, DE and CA.
- 56 days of data, 2025-03-03 .. 2025-04-27, per day, platform and country: users reaching each
  step of the checkout funnel (visit → product_view → add_to_cart → checkout_start → purchase),
  revenue, refunds and checkout errors. Traffic grows slowly and has weekly seasonality (web is
  busier on weekdays, the apps at weekends).
- On 2025-04-18 app release 5.2 ships a redesigned address form on both apps. For the last ten
  days (2025-04-18 .. 2025-04-27), checkout_start → purchase on iOS and Android falls by 25 %
  and checkout errors on mobile jump from 1.8 % to 6.5 % of checkout starts. Web is unchanged.
  This is the anomaly the Analyst must find.
- Six finished experiments (the learning history); one of them, a one-page checkout on
  Android, lost: the Planner should not propose it again.
- Results for experiments the loop launches later are generated from the experiment key (see
  `MockConnector.experiment_results`); the parameters are in "experiment_model".
"""

from __future__ import annotations

import json
import math
import random
import sys
from datetime import date, timedelta
from pathlib import Path

OUT = Path(__file__).with_name("mock_dataset.json")
SEED = 20250303

START = date(2025, 3, 3)
DAYS = 56
RELEASE = date(2025, 4, 18)  # app release 5.2: the last 10 days
PLATFORMS = ["web", "ios", "android"]
COUNTRIES = {"US": 0.52, "GB": 0.18, "DE": 0.16, "CA": 0.14}
STEPS = ["visit", "product_view", "add_to_cart", "checkout_start", "purchase"]

BASE_VISITORS = {"web": 36_000, "ios": 22_000, "android": 14_000}
DAILY_GROWTH = 0.0015
# Monday .. Sunday
WEEKDAY = {"web": [1.04, 1.05, 1.04, 1.02, 0.97, 0.92, 0.96],
           "ios": [0.95, 0.96, 0.97, 0.99, 1.03, 1.08, 1.07],
           "android": [0.95, 0.96, 0.97, 0.99, 1.03, 1.08, 1.07]}
STEP_RATES = {  # step n / step n-1
    "web": [0.58, 0.21, 0.52, 0.45],
    "ios": [0.64, 0.19, 0.47, 0.41],
    "android": [0.61, 0.17, 0.45, 0.39],
}
COUNTRY_PURCHASE = {"US": 1.00, "GB": 0.98, "DE": 0.96, "CA": 0.99}
MOBILE_CHECKOUT_DROP = 0.25          # relative drop of checkout_start → purchase after the release
ERROR_RATE_BEFORE, ERROR_RATE_AFTER = 0.018, 0.065
AOV = {"web": 72.0, "ios": 68.0, "android": 61.0}
REFUND_RATE = 0.024

METRICS = {
    "visits": {"column": "visit", "description": "users who visited"},
    "product_views": {"column": "product_view", "description": "users who viewed a product"},
    "add_to_carts": {"column": "add_to_cart", "description": "users who added to cart"},
    "checkout_starts": {"column": "checkout_start", "description": "users who started checkout"},
    "purchases": {"column": "purchase", "description": "users who purchased (one order each)"},
    "revenue": {"column": "revenue", "description": "revenue in USD"},
    "refunds": {"column": "refunds", "description": "refunded orders"},
    "checkout_errors": {"column": "checkout_errors", "description": "users who hit a checkout error"},
    "checkout_conversion": {"numerator": "purchases", "denominator": "checkout_starts",
                            "description": "checkout_start → purchase"},
    "conversion_rate": {"numerator": "purchases", "denominator": "visits", "description": "visit → purchase"},
    "product_view_rate": {"numerator": "product_views", "denominator": "visits",
                          "description": "visit → product_view"},
    "add_to_cart_rate": {"numerator": "add_to_carts", "denominator": "product_views",
                         "description": "product_view → add_to_cart"},
    "checkout_start_rate": {"numerator": "checkout_starts", "denominator": "add_to_carts",
                            "description": "add_to_cart → checkout_start"},
    "aov": {"numerator": "revenue", "denominator": "purchases", "description": "average order value (USD)"},
    "revenue_per_visitor": {"numerator": "revenue", "denominator": "visits", "description": "USD per visitor"},
    "refund_rate": {"numerator": "refunds", "denominator": "purchases", "description": "refunds per order"},
    "checkout_error_rate": {"numerator": "checkout_errors", "denominator": "checkout_starts",
                            "description": "checkout errors per checkout start"},
}

# Generated results for experiments launched by the loop (see MockConnector.experiment_results).
# Every rate is per exposed user; "mean" metrics are per-user means. `lift` is the first treatment's
# relative change (a second treatment gets half of it, a third a quarter…); `jitter` bounds the
# key-dependent variation of the control value (absolute for rates, relative for means) and
# `lift_jitter` that of the lift. `pre_correlation` is the correlation of a unit's pre-period value
# with its in-experiment value (CUPED; typical observed values are 0.4-0.7). Continuous metrics
# are lognormal per unit (`revenue_per_user`: zero for non-buyers, lognormal order values), which
# is what winsorisation (`cap_percentile`) caps. `aov` is a ratio metric: revenue / orders per unit.
EXPERIMENT_MODEL = {
    "users_per_arm": 20_000,
    "users_jitter": 400,
    "split_jitter": 0.001,
    "aov": 66.0,
    "aov_sd": 38.0,
    "primary_metric": "checkout_conversion",
    "metrics": {
        "checkout_conversion": {"kind": "conversion", "control": 0.300, "lift": 0.10, "jitter": 0.003,
                                "lift_jitter": 0.01, "pre_correlation": 0.45,
                                "description": "exposed mobile checkout starters who purchase"},
        "conversion_rate": {"kind": "conversion", "control": 0.300, "lift": 0.10, "jitter": 0.003,
                            "lift_jitter": 0.01, "pre_correlation": 0.45,
                            "description": "same population as checkout_conversion"},
        "refund_rate": {"kind": "conversion", "control": 0.0072, "lift": 0.0, "jitter": 0.0004,
                        "lift_jitter": 0.02, "pre_correlation": 0.2,
                        "description": "exposed users with a refunded order"},
        "checkout_error_rate": {"kind": "conversion", "control": 0.065, "lift": -0.05, "jitter": 0.002,
                                "lift_jitter": 0.02, "pre_correlation": 0.3,
                                "description": "exposed users who hit a checkout error"},
        "revenue_per_user": {"kind": "continuous", "derived_from": "checkout_conversion", "pre_correlation": 0.55,
                             "description": "USD per exposed user (conversion × order value)"},
        "support_tickets_per_order": {"kind": "continuous", "control": 0.045, "sd": 0.22, "lift": 0.0,
                                      "jitter": 0.02, "lift_jitter": 0.01, "pre_correlation": 0.5,
                                      "description": "tickets per order"},
        "p95_page_load_ms": {"kind": "continuous", "control": 2480.0, "sd": 640.0, "lift": 0.004,
                             "jitter": 0.01, "lift_jitter": 0.004, "pre_correlation": 0.7,
                             "description": "p95 checkout page load (ms)"},
        "aov": {"kind": "ratio", "derived_from": "checkout_conversion", "lift": 0.0, "lift_jitter": 0.01,
                "description": "average order value: revenue / orders per exposed user (delta method)"},
    },
}

ABOUT = [
    "Shopwise, a fictional online shop: a web site and iOS and Android apps, sold in US, GB, DE and CA.",
    "56 days, 2025-03-03 .. 2025-04-27, per day x platform x country: users reaching each checkout step "
    "(visit, product_view, add_to_cart, checkout_start, purchase), revenue (USD), refunds, checkout_errors.",
    "On 2025-04-18 app release 5.2 ships a new address form on iOS and Android: for the last 10 days "
    "checkout_start -> purchase on mobile falls by 25 % and mobile checkout errors jump from 1.8 % to 6.5 % "
    "of checkout starts. Web is unchanged. 'story' holds the exact before/after numbers.",
    "historical_experiments: six finished tests; the Android one-page checkout lost (KILL).",
    "Experiments launched later get results generated from their key (experiment_model): about 20,000 "
    "users per arm, an even split, checkout_conversion ~30 % in control and ~+10 % relative in treatment, "
    "guardrails flat; CUPED pre-period statistics for every mean metric, aov as a ratio metric, and "
    "winsorised means of continuous metrics on request (cap_percentile).",
    "The mock connector shifts all dates so that the last day is yesterday, unless settings pin end_date.",
    "Built by build_mock_dataset.py (seed 20250303); edit that script, not this file.",
]

HISTORY = [  # key, hypothesis, metric, segment, started, ended, control rate, lift, users per arm, verdict
    ("exp_pdp_reviews_above_fold", "Showing review stars above the fold on product pages raises add-to-cart",
     "add_to_cart_rate", {}, "2024-10-07", "2024-10-28", 0.190, 0.074, 60_000, "SHIP_WINNER"),
    ("exp_free_shipping_banner", "A free-shipping threshold banner on the cart page raises conversion",
     "conversion_rate", {}, "2024-11-04", "2024-11-25", 0.025, 0.012, 120_000, "INCONCLUSIVE"),
    ("exp_web_guest_checkout", "Letting web users check out as guests raises checkout conversion",
     "checkout_conversion", {"platform": "web"}, "2025-01-06", "2025-01-27", 0.430, 0.062, 20_000, "SHIP_WINNER"),
    ("exp_ios_apple_pay_first", "Putting Apple Pay first on the iOS payment step raises checkout conversion",
     "checkout_conversion", {"platform": "ios"}, "2025-01-20", "2025-02-10", 0.400, 0.048, 12_000, "SHIP_WINNER"),
    ("exp_android_one_page_checkout", "Collapsing the Android checkout into one long page raises conversion",
     "checkout_conversion", {"platform": "android"}, "2025-02-03", "2025-02-24", 0.390, -0.045, 7_000, "KILL"),
    ("exp_cart_upsell_carousel", "A 'frequently bought together' carousel in the cart raises order value",
     "aov", {}, "2025-02-10", "2025-03-03", 0.0, 0.012, 8_000, "ITERATE"),
]


def build() -> dict:
    rng = random.Random(SEED)
    rows = []
    for d in range(DAYS):
        day = START + timedelta(days=d)
        after = day >= RELEASE
        for platform in PLATFORMS:
            for country, share in COUNTRIES.items():
                visitors = (BASE_VISITORS[platform] * share * (1 + DAILY_GROWTH) ** d
                            * WEEKDAY[platform][day.weekday()] * rng.gauss(1, 0.02))
                counts = [round(visitors)]
                for i, rate in enumerate(STEP_RATES[platform]):
                    if i == 3:
                        rate *= COUNTRY_PURCHASE[country]
                        if after and platform != "web":
                            rate *= 1 - MOBILE_CHECKOUT_DROP
                    counts.append(round(counts[-1] * rate * rng.gauss(1, 0.015)))
                purchases = counts[-1]
                revenue = round(purchases * AOV[platform] * rng.gauss(1, 0.03), 2)
                refunds = round(purchases * REFUND_RATE * rng.gauss(1, 0.15))
                error_rate = ERROR_RATE_AFTER if after and platform != "web" else ERROR_RATE_BEFORE
                errors = round(counts[3] * error_rate * rng.gauss(1, 0.08))
                rows.append([day.isoformat(), platform, country, *counts, revenue, refunds, errors])
    columns = ["date", "platform", "country", *STEPS, "revenue", "refunds", "checkout_errors"]

    history, results = _history(rng)
    dataset = {
        "about": ABOUT,
        "story": _story(columns, rows),
        "calendar": {"start": START.isoformat(), "end": (START + timedelta(days=DAYS - 1)).isoformat(),
                     "anomaly_start": RELEASE.isoformat()},
        "dimensions": {"platform": PLATFORMS, "country": list(COUNTRIES)},
        "derived_dimensions": {"device": {"from": "platform",
                                          "values": {"desktop": ["web"], "mobile": ["ios", "android"]}}},
        "funnels": {"checkout": STEPS},
        "metrics": METRICS,
        "daily": {"columns": columns, "rows": rows},
        "historical_experiments": history,
        "experiment_results": results,
        "experiment_model": EXPERIMENT_MODEL,
    }
    return dataset


def _history(rng: random.Random) -> tuple[list[dict], dict]:
    """Finished experiments, with variant counts whose z-test gives the recorded p-value."""
    history, results = [], {}
    for key, hypothesis, metric, segment, started, ended, p0, lift, n, verdict in HISTORY:
        n_c, n_t = n + rng.randint(-60, 60), n + rng.randint(-60, 60)
        if metric == "aov":  # a mean metric: order values, compared with a t-test
            mean_c, sd = 66.0, 38.0
            mean_t = mean_c * (1 + lift)
            z = (mean_t - mean_c) / math.sqrt(sd**2 / n_c + sd**2 / n_t)
            variants = [
                {"variant": "control", "users": n_c, "conversions": n_c, "value_mean": mean_c, "value_sd": sd},
                {"variant": "treatment", "users": n_t, "conversions": n_t, "value_mean": round(mean_t, 2),
                 "value_sd": sd},
            ]
            kind = "continuous"
        else:
            c_c, c_t = round(n_c * p0), round(n_t * p0 * (1 + lift))
            r_c, r_t = c_c / n_c, c_t / n_t
            pooled = (c_c + c_t) / (n_c + n_t)
            z = (r_t - r_c) / math.sqrt(pooled * (1 - pooled) * (1 / n_c + 1 / n_t))
            lift = r_t / r_c - 1
            variants = [
                {"variant": "control", "users": n_c, "conversions": c_c},
                {"variant": "treatment", "users": n_t, "conversions": c_t},
            ]
            kind = "conversion"
        p = math.erfc(abs(z) / math.sqrt(2))
        history.append({"key": key, "hypothesis": hypothesis, "metric": metric, "lift": round(lift, 4),
                        "p_value": float(f"{p:.3g}"), "verdict": verdict, "started": started, "ended": ended,
                        "segment": segment})
        results[key] = {"metric": metric, "metric_kind": kind, "as_of": f"{ended}T00:00:00Z", "variants": variants}
    return history, results


def _story(columns: list[str], rows: list[list]) -> dict:
    """The numbers tests and docs quote: checkout conversion before and during the anomaly."""
    i_day, i_plat = columns.index("date"), columns.index("platform")
    i_cs, i_p, i_err = columns.index("checkout_start"), columns.index("purchase"), columns.index("checkout_errors")

    def rate(platforms: set[str], after: bool, num: int, den: int) -> float:
        sel = [r for r in rows if r[i_plat] in platforms and (r[i_day] >= RELEASE.isoformat()) == after]
        return round(sum(r[num] for r in sel) / sum(r[den] for r in sel), 4)

    story: dict = {"baseline_window": [START.isoformat(), (RELEASE - timedelta(days=1)).isoformat()],
                   "anomaly_window": [RELEASE.isoformat(), (START + timedelta(days=DAYS - 1)).isoformat()],
                   "checkout_conversion": {}, "checkout_error_rate": {}}
    for name, plats in [("web", {"web"}), ("ios", {"ios"}), ("android", {"android"}),
                        ("mobile", {"ios", "android"}), ("all", set(PLATFORMS))]:
        before, after = rate(plats, False, i_p, i_cs), rate(plats, True, i_p, i_cs)
        story["checkout_conversion"][name] = {"baseline": before, "anomaly": after,
                                              "relative_change": round(after / before - 1, 4)}
        story["checkout_error_rate"][name] = {"baseline": rate(plats, False, i_err, i_cs),
                                              "anomaly": rate(plats, True, i_err, i_cs)}
    return story


def render(dataset: dict) -> str:
    """One daily row per line: readable diffs, ~100 KB."""
    rows = dataset["daily"]["rows"]
    placeholder = "__ROWS__"
    shell = dict(dataset, daily={"columns": dataset["daily"]["columns"], "rows": placeholder})
    text = json.dumps(shell, indent=2, ensure_ascii=False)
    body = "[\n" + ",\n".join("      " + json.dumps(r, ensure_ascii=False) for r in rows) + "\n    ]"
    return text.replace(json.dumps(placeholder), body) + "\n"


def main(argv: list[str]) -> int:
    text = render(build())
    if "--check" in argv:
        if OUT.read_text(encoding="utf-8") != text:
            print(f"{OUT} is stale: run {Path(__file__).name} to rebuild it", file=sys.stderr)
            return 1
        return 0
    OUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUT} ({len(text) // 1024} KB)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
