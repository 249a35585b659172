"""The daemon's web page: static files served by :mod:`fer_edge.daemon.web` (no build step)."""
