"""The contagion engine: network risk measures, DebtRank, clearing and cascades over the
exposure graph (issue 5). Conventions: `contagion.graph.measures`."""
