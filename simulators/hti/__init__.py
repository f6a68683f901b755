"""Simulator of the HTI trade-ideas API (REST + server-sent events), for
testing and benchmarking the HTI producer without the real service."""

from simulators.hti.config import SimConfig
from simulators.hti.profiles import Profile, load_profiles, unlimited_profile
from simulators.hti.simulator import HtiSimulator

__all__ = ["HtiSimulator", "Profile", "SimConfig", "load_profiles", "unlimited_profile"]
