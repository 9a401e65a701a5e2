"""Contagion: systemic-risk pipeline for DeFi."""
