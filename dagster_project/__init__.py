"""Dagster layer: thin assets over the `contagion` library."""
