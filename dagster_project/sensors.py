"""The sensor that keeps indexing at the safe head: it adds a partition for every new window,
asks for windows whose blocks grew (the open window at the head), and for partitions a reorg
invalidated. After a reorg to a shorter chain it asks for the head window, whose run deletes
the invalidated partitions above the head, and removes the windows above the head."""


import dagster as dg

from contagion.chain.logs import safe_head
from contagion.indexing import StoredWindows, parse_window_key, stored_part, window_keys
from contagion.ingest import BLOCKS, check_reorgs
from dagster_project.assets import (
    BLOCK_RANGES,
    INDEXING_ASSETS,
    block_ranges,
)
from dagster_project.resources import ChainResource, LakeResource

index_job = dg.define_asset_job("index_block_ranges",
                                selection=dg.AssetSelection.assets(*INDEXING_ASSETS))


@dg.sensor(job=index_job, minimum_interval_seconds=30,
           default_status=dg.DefaultSensorStatus.STOPPED)
def block_range_sensor(context: dg.SensorEvaluationContext, chain: ChainResource,
                       lake: LakeResource) -> dg.SensorResult:
    registry, store = chain.load_registry(), lake.lake()
    client = chain.client()
    try:
        safe = safe_head(client, chain.confirmations)
        stale = check_reorgs(client, store, registry.chain_id, chain.reorg_window)
    finally:
        client.close()
    keys = window_keys(registry.deployed_at_block, safe, chain.partition_width)
    known = set(context.instance.get_dynamic_partitions(BLOCK_RANGES))
    stored = StoredWindows(store, [BLOCKS], registry.chain_id, chain.partition_width)
    requests = []
    for key in keys:
        start, stop = parse_window_key(key)
        have = stored_part(store, BLOCKS, registry.chain_id, start, stop, stored)
        want_stop = min(stop, safe + 1)
        # the head window's run (chain_logs) also deletes what is invalid above the safe head
        at_head = key == keys[-1]
        invalid = any(start <= p.start and (p.start < stop or at_head) for p in stale)
        if have is None or have.stop < want_stop or invalid:
            requests.append(dg.RunRequest(partition_key=key,
                                          run_key=f"{key}@{want_stop}:{len(stale)}"))
    # windows wholly above a shorter chain's head: no run could index them; added back as the
    # chain grows again
    gone = sorted(k for k in known - set(keys) if parse_window_key(k)[0] > safe)
    return dg.SensorResult(
        run_requests=requests,
        dynamic_partitions_requests=[
            block_ranges.build_add_request([k for k in keys if k not in known]),
            *([block_ranges.build_delete_request(gone)] if gone else [])])
