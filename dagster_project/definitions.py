"""The one Definitions object: the registry, the indexing assets with their checks, the SQL
models and database with theirs, the contagion and early-warning marts, the outputs (solvency
commitments, signed feed, health report, oracle updates), the jobs, the sensor that follows the
safe head and the daily schedule. Resources come from the environment (resources.py)."""


import dagster as dg
from dagster_duckdb import DuckDBResource

from dagster_project.assets import INDEXING_ASSETS
from dagster_project.contagion import contagion_marts, early_warning
from dagster_project.outputs import (
    health_report,
    oracle_updates,
    risk_feed,
    solvency_commitments,
)
from dagster_project.resources import (
    ChainResource,
    FeedResource,
    LakeResource,
    ReportResource,
    WarehouseResource,
    database_path,
)
from dagster_project.sensors import block_range_sensor, index_job
from dagster_project.warehouse import warehouse


@dg.asset(description="The network registry: venues, tokens, issued claims and oracle feeds.",
          group_name="indexing")
def registry(chain: ChainResource) -> dg.MaterializeResult[None]:
    reg = chain.load_registry()
    return dg.MaterializeResult(metadata={
        "network": reg.network, "chain_id": reg.chain_id, "source": chain.registry,
        "venues": len(reg.venues), "tokens": len(reg.tokens), "feeds": len(reg.feeds),
    })


# Everything downstream of the lake: the database, its marts, and what people receive.
BUILD_ASSETS = [warehouse, contagion_marts, early_warning, solvency_commitments, risk_feed,
                health_report, oracle_updates]
build_job = dg.define_asset_job("build_warehouse",
                                selection=dg.AssetSelection.assets(*BUILD_ASSETS))
daily = dg.ScheduleDefinition(name="daily_health_report", job=build_job,
                              cron_schedule="0 6 * * *", execution_timezone="UTC",
                              default_status=dg.DefaultScheduleStatus.RUNNING,
                              description="Every day: rebuild the database from the lake, score, "
                                          "sign the feed and write the health report")

defs = dg.Definitions(
    assets=[registry, *INDEXING_ASSETS, *BUILD_ASSETS],
    jobs=[index_job, build_job],
    schedules=[daily],
    sensors=[block_range_sensor],
    resources={"chain": ChainResource(), "lake": LakeResource(),
               "warehouse_settings": WarehouseResource(), "feed": FeedResource(),
               "report": ReportResource(),
               # analysts' access and the checks: read-only; only build_database writes the file
               "duckdb": DuckDBResource(database=database_path(),
                                        connection_config={"access_mode": "READ_ONLY"})},
)
