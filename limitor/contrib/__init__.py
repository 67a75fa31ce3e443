"""Integrations with other libraries, each behind its own extra.

* :mod:`limitor.contrib.httpx`: transports for ``httpx`` clients that shape outgoing
  requests per host and obey ``429``/``Retry-After`` (``pip install "limitor[httpx]"``).
* :mod:`limitor.contrib.asgi`: a pure ASGI middleware that polices incoming requests and
  sets the IETF ``RateLimit`` / ``RateLimit-Policy`` headers, and a FastAPI dependency
  (``pip install "limitor[asgi]"``).
* :mod:`limitor.contrib.otel`: an OpenTelemetry metrics listener
  (``pip install "limitor[otel]"``).

Importing a module whose extra is missing raises an :class:`ImportError` that names it.
"""
