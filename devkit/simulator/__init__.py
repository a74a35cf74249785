"""A deterministic, realistic e-commerce event stream for demos, tests and benchmarks."""

from shoppulse.devkit.simulator.generator import GroundTruth, SimulatedEvent, Simulator

__all__ = ["GroundTruth", "SimulatedEvent", "Simulator"]
