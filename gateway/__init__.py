"""The HTTP gateway: a thin Litestar app over the stores and the event log (see app.py)."""
