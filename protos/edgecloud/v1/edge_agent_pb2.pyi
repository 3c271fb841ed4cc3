from edgecloud.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class RoutePreference(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ROUTE_PREFERENCE_AUTO: _ClassVar[RoutePreference]
    ROUTE_PREFERENCE_LOCAL_ONLY: _ClassVar[RoutePreference]
    ROUTE_PREFERENCE_CLOUD_PREFERRED: _ClassVar[RoutePreference]

class RouteTarget(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ROUTE_TARGET_UNSPECIFIED: _ClassVar[RouteTarget]
    ROUTE_TARGET_LOCAL: _ClassVar[RouteTarget]
    ROUTE_TARGET_CLOUD: _ClassVar[RouteTarget]
    ROUTE_TARGET_CLOUD_REDACTED: _ClassVar[RouteTarget]
    ROUTE_TARGET_REJECT: _ClassVar[RouteTarget]
ROUTE_PREFERENCE_AUTO: RoutePreference
ROUTE_PREFERENCE_LOCAL_ONLY: RoutePreference
ROUTE_PREFERENCE_CLOUD_PREFERRED: RoutePreference
ROUTE_TARGET_UNSPECIFIED: RouteTarget
ROUTE_TARGET_LOCAL: RouteTarget
ROUTE_TARGET_CLOUD: RouteTarget
ROUTE_TARGET_CLOUD_REDACTED: RouteTarget
ROUTE_TARGET_REJECT: RouteTarget

class Routing(_message.Message):
    __slots__ = ("preference", "deadline_ms", "max_cost", "personal", "labels", "app_id")
    PREFERENCE_FIELD_NUMBER: _ClassVar[int]
    DEADLINE_MS_FIELD_NUMBER: _ClassVar[int]
    MAX_COST_FIELD_NUMBER: _ClassVar[int]
    PERSONAL_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    APP_ID_FIELD_NUMBER: _ClassVar[int]
    preference: RoutePreference
    deadline_ms: int
    max_cost: float
    personal: bool
    labels: _containers.RepeatedScalarFieldContainer[str]
    app_id: str
    def __init__(self, preference: _Optional[_Union[RoutePreference, str]] = ..., deadline_ms: _Optional[int] = ..., max_cost: _Optional[float] = ..., personal: _Optional[bool] = ..., labels: _Optional[_Iterable[str]] = ..., app_id: _Optional[str] = ...) -> None: ...

class GenerateRequest(_message.Message):
    __slots__ = ("prompt", "messages", "params", "routing", "use_context", "request_id", "tools")
    PROMPT_FIELD_NUMBER: _ClassVar[int]
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    ROUTING_FIELD_NUMBER: _ClassVar[int]
    USE_CONTEXT_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    TOOLS_FIELD_NUMBER: _ClassVar[int]
    prompt: str
    messages: _containers.RepeatedCompositeFieldContainer[_common_pb2.ChatMessage]
    params: _common_pb2.GenerationParams
    routing: Routing
    use_context: bool
    request_id: str
    tools: ToolUse
    def __init__(self, prompt: _Optional[str] = ..., messages: _Optional[_Iterable[_Union[_common_pb2.ChatMessage, _Mapping]]] = ..., params: _Optional[_Union[_common_pb2.GenerationParams, _Mapping]] = ..., routing: _Optional[_Union[Routing, _Mapping]] = ..., use_context: _Optional[bool] = ..., request_id: _Optional[str] = ..., tools: _Optional[_Union[ToolUse, _Mapping]] = ...) -> None: ...

class ToolUse(_message.Message):
    __slots__ = ("tools", "choice", "parallel")
    TOOLS_FIELD_NUMBER: _ClassVar[int]
    CHOICE_FIELD_NUMBER: _ClassVar[int]
    PARALLEL_FIELD_NUMBER: _ClassVar[int]
    tools: _containers.RepeatedCompositeFieldContainer[Tool]
    choice: str
    parallel: bool
    def __init__(self, tools: _Optional[_Iterable[_Union[Tool, _Mapping]]] = ..., choice: _Optional[str] = ..., parallel: _Optional[bool] = ...) -> None: ...

class Tool(_message.Message):
    __slots__ = ("name", "description", "parameters_json")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_JSON_FIELD_NUMBER: _ClassVar[int]
    name: str
    description: str
    parameters_json: str
    def __init__(self, name: _Optional[str] = ..., description: _Optional[str] = ..., parameters_json: _Optional[str] = ...) -> None: ...

class RouteOption(_message.Message):
    __slots__ = ("target", "estimated_latency_ms", "estimated_cost", "allowed", "note")
    TARGET_FIELD_NUMBER: _ClassVar[int]
    ESTIMATED_LATENCY_MS_FIELD_NUMBER: _ClassVar[int]
    ESTIMATED_COST_FIELD_NUMBER: _ClassVar[int]
    ALLOWED_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    target: RouteTarget
    estimated_latency_ms: float
    estimated_cost: float
    allowed: bool
    note: str
    def __init__(self, target: _Optional[_Union[RouteTarget, str]] = ..., estimated_latency_ms: _Optional[float] = ..., estimated_cost: _Optional[float] = ..., allowed: _Optional[bool] = ..., note: _Optional[str] = ...) -> None: ...

class RouteDecision(_message.Message):
    __slots__ = ("target", "rules_fired", "explanation", "options", "pii_kinds", "context_item_ids", "fallback", "fallback_reason", "cloud_chars")
    TARGET_FIELD_NUMBER: _ClassVar[int]
    RULES_FIRED_FIELD_NUMBER: _ClassVar[int]
    EXPLANATION_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    PII_KINDS_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_ITEM_IDS_FIELD_NUMBER: _ClassVar[int]
    FALLBACK_FIELD_NUMBER: _ClassVar[int]
    FALLBACK_REASON_FIELD_NUMBER: _ClassVar[int]
    CLOUD_CHARS_FIELD_NUMBER: _ClassVar[int]
    target: RouteTarget
    rules_fired: _containers.RepeatedScalarFieldContainer[str]
    explanation: str
    options: _containers.RepeatedCompositeFieldContainer[RouteOption]
    pii_kinds: _containers.RepeatedScalarFieldContainer[str]
    context_item_ids: _containers.RepeatedScalarFieldContainer[str]
    fallback: bool
    fallback_reason: str
    cloud_chars: int
    def __init__(self, target: _Optional[_Union[RouteTarget, str]] = ..., rules_fired: _Optional[_Iterable[str]] = ..., explanation: _Optional[str] = ..., options: _Optional[_Iterable[_Union[RouteOption, _Mapping]]] = ..., pii_kinds: _Optional[_Iterable[str]] = ..., context_item_ids: _Optional[_Iterable[str]] = ..., fallback: _Optional[bool] = ..., fallback_reason: _Optional[str] = ..., cloud_chars: _Optional[int] = ...) -> None: ...

class GenerateResponse(_message.Message):
    __slots__ = ("delta", "done")
    DELTA_FIELD_NUMBER: _ClassVar[int]
    DONE_FIELD_NUMBER: _ClassVar[int]
    delta: str
    done: GenerateDone
    def __init__(self, delta: _Optional[str] = ..., done: _Optional[_Union[GenerateDone, _Mapping]] = ...) -> None: ...

class GenerateDone(_message.Message):
    __slots__ = ("usage", "route", "finish_reason", "request_id", "tool_calls")
    USAGE_FIELD_NUMBER: _ClassVar[int]
    ROUTE_FIELD_NUMBER: _ClassVar[int]
    FINISH_REASON_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    TOOL_CALLS_FIELD_NUMBER: _ClassVar[int]
    usage: _common_pb2.Usage
    route: RouteDecision
    finish_reason: str
    request_id: str
    tool_calls: _containers.RepeatedCompositeFieldContainer[_common_pb2.ToolCall]
    def __init__(self, usage: _Optional[_Union[_common_pb2.Usage, _Mapping]] = ..., route: _Optional[_Union[RouteDecision, _Mapping]] = ..., finish_reason: _Optional[str] = ..., request_id: _Optional[str] = ..., tool_calls: _Optional[_Iterable[_Union[_common_pb2.ToolCall, _Mapping]]] = ...) -> None: ...

class CompleteResponse(_message.Message):
    __slots__ = ("text", "done")
    TEXT_FIELD_NUMBER: _ClassVar[int]
    DONE_FIELD_NUMBER: _ClassVar[int]
    text: str
    done: GenerateDone
    def __init__(self, text: _Optional[str] = ..., done: _Optional[_Union[GenerateDone, _Mapping]] = ...) -> None: ...

class ContextItem(_message.Message):
    __slots__ = ("id", "kind", "title", "body", "source", "source_id", "participants", "tags", "sensitivity", "created_at", "starts_at", "ends_at", "expires_at")
    ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    BODY_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    SOURCE_ID_FIELD_NUMBER: _ClassVar[int]
    PARTICIPANTS_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    SENSITIVITY_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    STARTS_AT_FIELD_NUMBER: _ClassVar[int]
    ENDS_AT_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    id: str
    kind: str
    title: str
    body: str
    source: str
    source_id: str
    participants: _containers.RepeatedScalarFieldContainer[str]
    tags: _containers.RepeatedScalarFieldContainer[str]
    sensitivity: str
    created_at: int
    starts_at: int
    ends_at: int
    expires_at: int
    def __init__(self, id: _Optional[str] = ..., kind: _Optional[str] = ..., title: _Optional[str] = ..., body: _Optional[str] = ..., source: _Optional[str] = ..., source_id: _Optional[str] = ..., participants: _Optional[_Iterable[str]] = ..., tags: _Optional[_Iterable[str]] = ..., sensitivity: _Optional[str] = ..., created_at: _Optional[int] = ..., starts_at: _Optional[int] = ..., ends_at: _Optional[int] = ..., expires_at: _Optional[int] = ...) -> None: ...

class PutContextRequest(_message.Message):
    __slots__ = ("items",)
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[ContextItem]
    def __init__(self, items: _Optional[_Iterable[_Union[ContextItem, _Mapping]]] = ...) -> None: ...

class PutContextResponse(_message.Message):
    __slots__ = ("ids",)
    IDS_FIELD_NUMBER: _ClassVar[int]
    ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, ids: _Optional[_Iterable[str]] = ...) -> None: ...

class SearchContextRequest(_message.Message):
    __slots__ = ("query", "limit", "kinds", "since", "until", "tags", "sensitivities")
    QUERY_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    KINDS_FIELD_NUMBER: _ClassVar[int]
    SINCE_FIELD_NUMBER: _ClassVar[int]
    UNTIL_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    SENSITIVITIES_FIELD_NUMBER: _ClassVar[int]
    query: str
    limit: int
    kinds: _containers.RepeatedScalarFieldContainer[str]
    since: int
    until: int
    tags: _containers.RepeatedScalarFieldContainer[str]
    sensitivities: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, query: _Optional[str] = ..., limit: _Optional[int] = ..., kinds: _Optional[_Iterable[str]] = ..., since: _Optional[int] = ..., until: _Optional[int] = ..., tags: _Optional[_Iterable[str]] = ..., sensitivities: _Optional[_Iterable[str]] = ...) -> None: ...

class SearchHit(_message.Message):
    __slots__ = ("item", "score")
    ITEM_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    item: ContextItem
    score: float
    def __init__(self, item: _Optional[_Union[ContextItem, _Mapping]] = ..., score: _Optional[float] = ...) -> None: ...

class SearchContextResponse(_message.Message):
    __slots__ = ("hits", "omitted")
    HITS_FIELD_NUMBER: _ClassVar[int]
    OMITTED_FIELD_NUMBER: _ClassVar[int]
    hits: _containers.RepeatedCompositeFieldContainer[SearchHit]
    omitted: int
    def __init__(self, hits: _Optional[_Iterable[_Union[SearchHit, _Mapping]]] = ..., omitted: _Optional[int] = ...) -> None: ...

class DeleteContextRequest(_message.Message):
    __slots__ = ("ids", "source", "all", "query")
    IDS_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    ALL_FIELD_NUMBER: _ClassVar[int]
    QUERY_FIELD_NUMBER: _ClassVar[int]
    ids: _containers.RepeatedScalarFieldContainer[str]
    source: str
    all: bool
    query: str
    def __init__(self, ids: _Optional[_Iterable[str]] = ..., source: _Optional[str] = ..., all: _Optional[bool] = ..., query: _Optional[str] = ...) -> None: ...

class DeleteContextResponse(_message.Message):
    __slots__ = ("deleted",)
    DELETED_FIELD_NUMBER: _ClassVar[int]
    deleted: int
    def __init__(self, deleted: _Optional[int] = ...) -> None: ...

class GetStatsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class StatsResponse(_message.Message):
    __slots__ = ("requests_by_route", "errors", "ttft_p50_ms", "ttft_p99_ms", "local_tokens_per_s_p50", "acceptance_rate", "cloud_spend", "cloud_circuit", "context_items", "fallbacks", "runtime", "model", "local_energy_j", "local_tokens_per_j_p50", "energy_source")
    class RequestsByRouteEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    REQUESTS_BY_ROUTE_FIELD_NUMBER: _ClassVar[int]
    ERRORS_FIELD_NUMBER: _ClassVar[int]
    TTFT_P50_MS_FIELD_NUMBER: _ClassVar[int]
    TTFT_P99_MS_FIELD_NUMBER: _ClassVar[int]
    LOCAL_TOKENS_PER_S_P50_FIELD_NUMBER: _ClassVar[int]
    ACCEPTANCE_RATE_FIELD_NUMBER: _ClassVar[int]
    CLOUD_SPEND_FIELD_NUMBER: _ClassVar[int]
    CLOUD_CIRCUIT_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_ITEMS_FIELD_NUMBER: _ClassVar[int]
    FALLBACKS_FIELD_NUMBER: _ClassVar[int]
    RUNTIME_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    LOCAL_ENERGY_J_FIELD_NUMBER: _ClassVar[int]
    LOCAL_TOKENS_PER_J_P50_FIELD_NUMBER: _ClassVar[int]
    ENERGY_SOURCE_FIELD_NUMBER: _ClassVar[int]
    requests_by_route: _containers.ScalarMap[str, int]
    errors: int
    ttft_p50_ms: float
    ttft_p99_ms: float
    local_tokens_per_s_p50: float
    acceptance_rate: float
    cloud_spend: float
    cloud_circuit: str
    context_items: int
    fallbacks: int
    runtime: RuntimeInfo
    model: ModelState
    local_energy_j: float
    local_tokens_per_j_p50: float
    energy_source: str
    def __init__(self, requests_by_route: _Optional[_Mapping[str, int]] = ..., errors: _Optional[int] = ..., ttft_p50_ms: _Optional[float] = ..., ttft_p99_ms: _Optional[float] = ..., local_tokens_per_s_p50: _Optional[float] = ..., acceptance_rate: _Optional[float] = ..., cloud_spend: _Optional[float] = ..., cloud_circuit: _Optional[str] = ..., context_items: _Optional[int] = ..., fallbacks: _Optional[int] = ..., runtime: _Optional[_Union[RuntimeInfo, _Mapping]] = ..., model: _Optional[_Union[ModelState, _Mapping]] = ..., local_energy_j: _Optional[float] = ..., local_tokens_per_j_p50: _Optional[float] = ..., energy_source: _Optional[str] = ...) -> None: ...

class ModelState(_message.Message):
    __slots__ = ("name", "state", "keep_alive_s", "expires_in_s", "loads", "unloads", "active", "waiting", "queue_depth")
    NAME_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    KEEP_ALIVE_S_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_IN_S_FIELD_NUMBER: _ClassVar[int]
    LOADS_FIELD_NUMBER: _ClassVar[int]
    UNLOADS_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_FIELD_NUMBER: _ClassVar[int]
    WAITING_FIELD_NUMBER: _ClassVar[int]
    QUEUE_DEPTH_FIELD_NUMBER: _ClassVar[int]
    name: str
    state: str
    keep_alive_s: float
    expires_in_s: float
    loads: int
    unloads: int
    active: int
    waiting: int
    queue_depth: int
    def __init__(self, name: _Optional[str] = ..., state: _Optional[str] = ..., keep_alive_s: _Optional[float] = ..., expires_in_s: _Optional[float] = ..., loads: _Optional[int] = ..., unloads: _Optional[int] = ..., active: _Optional[int] = ..., waiting: _Optional[int] = ..., queue_depth: _Optional[int] = ...) -> None: ...

class RuntimeInfo(_message.Message):
    __slots__ = ("build_variant", "llama_cpp_python", "system_info", "buffer_types_mib", "plain_step_ms", "verify_cost", "threads", "thread_switches", "selfcheck", "kv_cache_mib", "kv_types", "parallel", "shared_steps", "shared_rows", "resident_mib")
    class BufferTypesMibEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    BUILD_VARIANT_FIELD_NUMBER: _ClassVar[int]
    LLAMA_CPP_PYTHON_FIELD_NUMBER: _ClassVar[int]
    SYSTEM_INFO_FIELD_NUMBER: _ClassVar[int]
    BUFFER_TYPES_MIB_FIELD_NUMBER: _ClassVar[int]
    PLAIN_STEP_MS_FIELD_NUMBER: _ClassVar[int]
    VERIFY_COST_FIELD_NUMBER: _ClassVar[int]
    THREADS_FIELD_NUMBER: _ClassVar[int]
    THREAD_SWITCHES_FIELD_NUMBER: _ClassVar[int]
    SELFCHECK_FIELD_NUMBER: _ClassVar[int]
    KV_CACHE_MIB_FIELD_NUMBER: _ClassVar[int]
    KV_TYPES_FIELD_NUMBER: _ClassVar[int]
    PARALLEL_FIELD_NUMBER: _ClassVar[int]
    SHARED_STEPS_FIELD_NUMBER: _ClassVar[int]
    SHARED_ROWS_FIELD_NUMBER: _ClassVar[int]
    RESIDENT_MIB_FIELD_NUMBER: _ClassVar[int]
    build_variant: str
    llama_cpp_python: str
    system_info: str
    buffer_types_mib: _containers.ScalarMap[str, float]
    plain_step_ms: float
    verify_cost: _containers.RepeatedScalarFieldContainer[float]
    threads: int
    thread_switches: int
    selfcheck: str
    kv_cache_mib: float
    kv_types: str
    parallel: int
    shared_steps: int
    shared_rows: int
    resident_mib: float
    def __init__(self, build_variant: _Optional[str] = ..., llama_cpp_python: _Optional[str] = ..., system_info: _Optional[str] = ..., buffer_types_mib: _Optional[_Mapping[str, float]] = ..., plain_step_ms: _Optional[float] = ..., verify_cost: _Optional[_Iterable[float]] = ..., threads: _Optional[int] = ..., thread_switches: _Optional[int] = ..., selfcheck: _Optional[str] = ..., kv_cache_mib: _Optional[float] = ..., kv_types: _Optional[str] = ..., parallel: _Optional[int] = ..., shared_steps: _Optional[int] = ..., shared_rows: _Optional[int] = ..., resident_mib: _Optional[float] = ...) -> None: ...

class ReloadPolicyRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ReloadPolicyResponse(_message.Message):
    __slots__ = ("policy_file",)
    POLICY_FILE_FIELD_NUMBER: _ClassVar[int]
    policy_file: str
    def __init__(self, policy_file: _Optional[str] = ...) -> None: ...

class UseModelRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class UseModelResponse(_message.Message):
    __slots__ = ("previous", "model", "seconds")
    PREVIOUS_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    SECONDS_FIELD_NUMBER: _ClassVar[int]
    previous: str
    model: str
    seconds: float
    def __init__(self, previous: _Optional[str] = ..., model: _Optional[str] = ..., seconds: _Optional[float] = ...) -> None: ...

class EmbedRequest(_message.Message):
    __slots__ = ("input", "app_id", "model")
    INPUT_FIELD_NUMBER: _ClassVar[int]
    APP_ID_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    input: _containers.RepeatedScalarFieldContainer[str]
    app_id: str
    model: str
    def __init__(self, input: _Optional[_Iterable[str]] = ..., app_id: _Optional[str] = ..., model: _Optional[str] = ...) -> None: ...

class Embedding(_message.Message):
    __slots__ = ("values",)
    VALUES_FIELD_NUMBER: _ClassVar[int]
    values: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, values: _Optional[_Iterable[float]] = ...) -> None: ...

class EmbedResponse(_message.Message):
    __slots__ = ("data", "prompt_tokens", "pooling", "dimensions")
    DATA_FIELD_NUMBER: _ClassVar[int]
    PROMPT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    POOLING_FIELD_NUMBER: _ClassVar[int]
    DIMENSIONS_FIELD_NUMBER: _ClassVar[int]
    data: _containers.RepeatedCompositeFieldContainer[Embedding]
    prompt_tokens: int
    pooling: str
    dimensions: int
    def __init__(self, data: _Optional[_Iterable[_Union[Embedding, _Mapping]]] = ..., prompt_tokens: _Optional[int] = ..., pooling: _Optional[str] = ..., dimensions: _Optional[int] = ...) -> None: ...
