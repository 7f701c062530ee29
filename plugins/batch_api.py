"""Batch API jobs, under the names this module has always offered.

Batch API mode is the chain's own code (``Chain.submit_batch``, in ``costmw/_batch_api.py``), not
a plugin; the names are exported by ``costmw`` and kept importable here.
"""

from __future__ import annotations

from costmw import BatchJob, BatchNotReadyError, BatchOutcome
from costmw.plugin_api import BATCH_DISCOUNTS

__all__ = ["BATCH_DISCOUNTS", "BatchJob", "BatchNotReadyError", "BatchOutcome"]
