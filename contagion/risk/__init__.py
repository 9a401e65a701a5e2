"""Early warning (issue 6): option greeks, robust anomaly scores, alert levels."""
