"""Which tracked queries a post matches, and which worker's lane it is routed to (pure)."""
