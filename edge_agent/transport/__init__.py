"""The daemon's front doors and their converters: the gRPC servicer (``grpc_server``,
``convert``), the OpenAI-compatible HTTP door (``openai_http``, ``openai_convert``,
``http_guard``, ``http_conn``), tokens (``auth``) and the status shape (``status``).
The daemon that binds and runs them is ``edge_agent.daemon``."""
