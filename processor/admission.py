"""Admission: how a message body becomes admitted events, the same in the worker and in file ingest.

A body goes through `Intake.admit` (`processor.core.intake`: decode, the source allow-list, the catalog, the
identity checks) and comes out as `Admitted` events, at most one `DeadLetter` for the rest, and counts in the
caller's `Tally`. The worker then holds the events in its reorder buffer until their window ends
(`processor.worker.worker`); file ingest gathers them into its next fold batch (`processor.ingest`). Both build
their intake here, so that the catalog, the allowed sources and the decode limits mean the same in both.

Beside the worker and file ingest, which both import it; imports the settings and the core.
"""

from __future__ import annotations

from processor.config import Settings
from processor.core.intake import Intake
from processor.events.envelope import DecodeLimits


def make_intake(settings: Settings) -> Intake:
    """The intake the settings describe: their catalog, allowed sources and decode limits."""
    limits = DecodeLimits(max_body_bytes=settings.max_body_bytes, max_depth=settings.max_depth)
    return Intake(settings.catalog(), settings.allowed_sources, limits)
