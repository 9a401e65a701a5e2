"""Coordinated-freeze recommendations (issue 6): the policy file and the greedy choice."""
