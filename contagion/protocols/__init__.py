"""Protocol families: each module declares its events (real signatures) in one place."""
