"""ModelRouter: the cheapest target that will answer well, by rules, a learned model or a cascade,
with fallbacks, cooldowns, budgets and an explanation of every decision."""

from __future__ import annotations

from ._answer import answer_features, check_arithmetic
from ._budget import Budget
from ._calibrate import (
    escalation_order,
    gain_per_dollar,
    routing_curve,
    sends_to_strong,
    share_needed,
    threshold_for_quality,
    threshold_for_share,
)
from ._cascade import (
    AgreementScorer,
    ArithmeticScorer,
    Cascade,
    ConfidenceScorer,
    LogprobScorer,
    RefusalScorer,
    Scorer,
    TokenScorer,
    TrainedScorer,
    answers_agree,
)
from ._confidence import CONFIDENCE_FEATURES, ConfidenceModel, default_confidence_model, keep_threshold
from ._evidence import EVIDENCE_NAMES, evidence
from ._features import text_features
from ._learned import CostAware, Learned
from ._model import QualityModel
from ._neighbours import NeighbourRate, TrafficMemory, prompt_template
from ._questions import check_reply, synthetic_questions
from ._route import Route, RouteContext
from ._router import ModelRouter
from ._rules import Rule, Rules
from ._strategy import Cheapest, FirstOf, Requested, Strategy, register_strategy

__all__ = [
    "CONFIDENCE_FEATURES",
    "EVIDENCE_NAMES",
    "AgreementScorer",
    "ArithmeticScorer",
    "Budget",
    "Cascade",
    "Cheapest",
    "ConfidenceModel",
    "ConfidenceScorer",
    "CostAware",
    "FirstOf",
    "Learned",
    "LogprobScorer",
    "ModelRouter",
    "NeighbourRate",
    "QualityModel",
    "RefusalScorer",
    "Requested",
    "Route",
    "RouteContext",
    "Rule",
    "Rules",
    "Scorer",
    "Strategy",
    "TokenScorer",
    "TrafficMemory",
    "TrainedScorer",
    "answer_features",
    "answers_agree",
    "check_arithmetic",
    "check_reply",
    "default_confidence_model",
    "escalation_order",
    "evidence",
    "gain_per_dollar",
    "keep_threshold",
    "prompt_template",
    "register_strategy",
    "routing_curve",
    "sends_to_strong",
    "share_needed",
    "synthetic_questions",
    "text_features",
    "threshold_for_quality",
    "threshold_for_share",
]
