"""The daemon: the composition root and lifecycle of ``edge-agent serve``.

``wiring`` builds the service from a Config (model, store, ledger, policy, cloud);
``lifecycle`` binds the doors, holds the single-instance lock, runs health, drain,
metrics and shutdown; ``http_door`` binds and runs the OpenAI-compatible door;
``doors`` sizes every door's connection bound. The front doors themselves and their
converters live in ``edge_agent.transport``; both are handed one
``edge_agent.pipeline.readiness.Readiness``.
"""
