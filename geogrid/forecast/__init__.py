"""Forecasting next-period risk per H3 cell (and per grid), with a leak-proof rolling-origin backtest.

>>> from geogrid.forecast import History, KDE, backtest, weekly_periods  # doctest: +SKIP
>>> KDE().fit(History(incidents, cells, "2019-06-03"), horizon_days=7).scores_.nlargest(50)  # doctest: +SKIP
"""
from geogrid.forecast.backtest import backtest, block_periods, summarise, weekly_periods
from geogrid.forecast.history import History
from geogrid.forecast.learned import Learned
from geogrid.forecast.methods import (
    KDE,
    Forecaster,
    LastPeriod,
    LongWindow,
    Prospective,
    forecast,
    make_method,
    scores_to_grids,
)
from geogrid.forecast.stacked import Stacked
from geogrid.forecast.metrics import evaluate, hit_rate, pai, pei, pei_star, warning_accuracy

__all__ = [
    "History", "Forecaster", "LastPeriod", "LongWindow", "KDE", "Prospective", "Learned", "Stacked",
    "forecast", "make_method", "scores_to_grids",
    "backtest", "summarise", "weekly_periods", "block_periods",
    "evaluate", "hit_rate", "pai", "pei", "pei_star", "warning_accuracy",
]
