"""Annotated aliases for what handlers get injected (DESIGN: dependencies built in lifespans)."""

from __future__ import annotations

from litestar.di import NamedDependency

from gateway.metrics import Metrics
from gateway.services import Services
from schemas.api import SearchFilters

ServicesDep = NamedDependency[Services]
MetricsDep = NamedDependency[Metrics]
FiltersDep = NamedDependency[SearchFilters]
