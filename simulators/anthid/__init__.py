"""Anthid (contract C) simulator: `tradebus sim anthid`, or in-process via
`simulators.anthid.server.AnthidSimulator(SimConfig(...)).start()`.

`received_at` on every data event is the simulator's emit time (see README.md).
This package imports nothing heavy so that the CLI can register cheaply.
"""
