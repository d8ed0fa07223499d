"""Edges: WebSocket gateway, protocol, client, persistence."""
