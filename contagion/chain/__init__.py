"""Chain access over JSON-RPC."""
