from dagster_project.definitions import defs


def test_definitions_load_with_registry_asset() -> None:
    keys = {key.to_user_string() for key in defs.resolve_asset_graph().get_all_asset_keys()}
    assert "registry" in keys
