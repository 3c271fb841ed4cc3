from edgecloud.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CloudGenerateRequest(_message.Message):
    __slots__ = ("request_id", "prompt", "params", "messages")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    PROMPT_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    prompt: str
    params: _common_pb2.GenerationParams
    messages: _containers.RepeatedCompositeFieldContainer[_common_pb2.ChatMessage]
    def __init__(self, request_id: _Optional[str] = ..., prompt: _Optional[str] = ..., params: _Optional[_Union[_common_pb2.GenerationParams, _Mapping]] = ..., messages: _Optional[_Iterable[_Union[_common_pb2.ChatMessage, _Mapping]]] = ...) -> None: ...

class CloudGenerateResponse(_message.Message):
    __slots__ = ("delta", "done")
    DELTA_FIELD_NUMBER: _ClassVar[int]
    DONE_FIELD_NUMBER: _ClassVar[int]
    delta: str
    done: CloudDone
    def __init__(self, delta: _Optional[str] = ..., done: _Optional[_Union[CloudDone, _Mapping]] = ...) -> None: ...

class CloudDone(_message.Message):
    __slots__ = ("usage", "finish_reason")
    USAGE_FIELD_NUMBER: _ClassVar[int]
    FINISH_REASON_FIELD_NUMBER: _ClassVar[int]
    usage: _common_pb2.Usage
    finish_reason: str
    def __init__(self, usage: _Optional[_Union[_common_pb2.Usage, _Mapping]] = ..., finish_reason: _Optional[str] = ...) -> None: ...

class InfoRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class InfoResponse(_message.Message):
    __slots__ = ("model", "context_length", "price_in_per_1k", "price_out_per_1k", "max_tokens_limit", "backend")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_LENGTH_FIELD_NUMBER: _ClassVar[int]
    PRICE_IN_PER_1K_FIELD_NUMBER: _ClassVar[int]
    PRICE_OUT_PER_1K_FIELD_NUMBER: _ClassVar[int]
    MAX_TOKENS_LIMIT_FIELD_NUMBER: _ClassVar[int]
    BACKEND_FIELD_NUMBER: _ClassVar[int]
    model: str
    context_length: int
    price_in_per_1k: float
    price_out_per_1k: float
    max_tokens_limit: int
    backend: str
    def __init__(self, model: _Optional[str] = ..., context_length: _Optional[int] = ..., price_in_per_1k: _Optional[float] = ..., price_out_per_1k: _Optional[float] = ..., max_tokens_limit: _Optional[int] = ..., backend: _Optional[str] = ...) -> None: ...
