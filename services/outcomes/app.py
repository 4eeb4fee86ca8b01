"""Outcomes: measurement over time at a site (site role), and the cross-site aggregates (network role)."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from fastapi import FastAPI

from services.outcomes import handlers, models
from services.outcomes.api import site
from services.outcomes.api.network import NETWORK_ROUTERS, network_router
from services.outcomes.domain.definitions import site_definition
from services.outcomes.service import beat, network
from shared.app import ServiceDefinition, ServiceRuntime, create_service_app
from shared.bus.kafka import raise_if_cancelling
from shared.events.outcomes import CohortAggregatePublished, CohortOutcomesPublished
from shared.events.registry import foreign_aggregate
from shared.privacy.release import ReleasePeriod
from shared.settings import ServiceSettings

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).parent / "migrations"


async def publish_aggregates(runtime: ServiceRuntime) -> None:
    """Site role: judge the courses and publish the site's aggregates on a fixed beat rather than per event, so
    the network never learns when an individual registration or dose happened (service/beat.py)."""
    definition = site_definition(runtime.settings.pcl5_cutoff)
    zone = runtime.settings.zone
    period = ReleasePeriod(runtime.settings.release_period)
    noise = (
        beat.PrivacyBudgetSettings(
            epsilon_per_month=runtime.settings.privacy_epsilon_per_month,
            epsilon_per_release=runtime.settings.privacy_epsilon_per_release,
        )
        if runtime.settings.privacy_mode == "differential"
        else None
    )
    judged_at: beat.Watermark | None = None
    while True:
        # The first beat too waits one interval: a service just started is still reading its topics, and a
        # release made then would stand for the whole period (a day, by default) with half the site's courses.
        await asyncio.sleep(runtime.settings.aggregate_publish_interval_seconds)
        try:
            async with runtime.unit_of_work() as uow:
                mark = await beat.watermark(uow, zone, period)
            # Judging every course takes seconds on a site's history: not again while nothing has changed.
            if mark != judged_at:
                report = await beat.review_site(
                    runtime.unit_of_work, runtime.own_site, zone, definition, period, noise=noise
                )
                judged_at = None if report.release_deferred else mark  # a deferred release is tried at the next beat
                log.info("outcomes beat: %s", report.model_dump_json())
        except Exception as exc:
            raise_if_cancelling()
            log.warning("aggregate publication failed: %s", type(exc).__name__)


# How often the network's leader checks the MeasureReport index again after its first check at the start.
MEASURE_INDEX_CHECK_INTERVAL_SECONDS = 3600.0


async def check_measure_index(runtime: ServiceRuntime) -> None:
    """Network role, on the leader: the MeasureReport index checked against the cohorts held (service/network.py)
    when it starts leading, so that a release that adds or changes a measure indexes the cohorts already held,
    and then every hour, for cohorts an older release took in without an index during a rolling upgrade."""
    while True:
        began = asyncio.get_running_loop().time()
        corrected = await network.check_measure_index(runtime.unit_of_work)
        seconds = asyncio.get_running_loop().time() - began
        log.info("measure report index checked in %.1f s: %d cohort(s) corrected", seconds, corrected)
        await asyncio.sleep(MEASURE_INDEX_CHECK_INTERVAL_SECONDS)


SITE_ROLE = ServiceDefinition(
    title="outcomes (site)",
    description="Measurement over time at one site; publishes de-identified aggregates to the network.",
    migrations=MIGRATIONS / "site",
    routers=[site.router, site.fhir_router],
    # The network topic for the cohorts; the site's own topic for followup.due, which names a patient.
    produces=lambda runtime: [runtime.network_topic(), runtime.site_topic("outcomes")],
    consumers=lambda runtime: [
        # Rebuilding: a new outcomes database (or one just migrated to new tables) reads the topics from the start.
        runtime.consumer(
            [runtime.site_topic(service) for service in handlers.SITE_HANDLERS],
            {event: handle for by_type in handlers.SITE_HANDLERS.values() for event, handle in by_type.items()},
            rebuild_forgotten_partitions=True,
        )
    ],
    background=[publish_aggregates],
    # Not the judged results, the releases, the privacy budget or the follow-ups announced: records of its own.
    projections=[
        models.Registration,
        models.OutcomePatient,
        models.OutcomeCourse,
        models.OutcomeCoverage,
        models.OutcomeSession,
        models.OutcomeDose,
        models.OutcomeMeasurement,
        models.OutcomeAdverseEvent,
        models.OutcomeVitalsAlert,
        models.OutcomeSafetyFlag,
        models.OutcomePriorTreatment,
        models.OutcomeBarrier,
    ],
)

NETWORK_ROLE = ServiceDefinition(
    title="outcomes (network)",
    description="The latest de-identified aggregate of every (site, cohort). No patient-level data.",
    migrations=MIGRATIONS / "network",
    routers=[network_router, *NETWORK_ROUTERS],
    # The network's database is only a view of the compacted topic: a new or wiped one is rebuilt from it.
    consumers=lambda runtime: [
        runtime.consumer(
            runtime.network_topics(),
            {
                CohortAggregatePublished: handlers.on_cohort_aggregate,
                CohortOutcomesPublished: handlers.on_cohort_outcomes,
            },
            rebuild_forgotten_partitions=True,
            refuse_origin=foreign_aggregate,
        )
    ],
    background=[check_measure_index],
    projections=[models.NetworkAggregate, models.NetworkCohortOutcome, models.NetworkMeasureReport],
)


def definition_for(settings: ServiceSettings) -> ServiceDefinition:
    return NETWORK_ROLE if settings.role == "network" else SITE_ROLE


def create_app(settings: ServiceSettings) -> FastAPI:
    return create_service_app(settings, definition_for(settings))
