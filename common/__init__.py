"""Code shared by edge_agent, cloud_stub and orchestrator (no llama.cpp).

The error hierarchy and its wire table (``errors``), parameter and schema checks,
chat rendering, model-file resolution (``model_files``), the thread -> asyncio bridge,
SQLite setup and log helpers need no gRPC; ``grpc_status`` (the error interceptor) and
``rpc`` (health, reflection, drain, bearer tokens) are the gRPC part and ``wire`` reads
protobuf bytes: ``orchestrator`` imports none of the three.
"""
