"""Network server: trio listener, connections, request dispatch, handlers, configuration."""
