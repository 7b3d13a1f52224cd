from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor

class EchoRequest(_message.Message):
    __slots__ = ("name", "count", "fail_code", "fail_after")
    NAME_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    FAIL_CODE_FIELD_NUMBER: _ClassVar[int]
    FAIL_AFTER_FIELD_NUMBER: _ClassVar[int]
    name: str
    count: int
    fail_code: int
    fail_after: int
    def __init__(self, name: _Optional[str] = ..., count: _Optional[int] = ..., fail_code: _Optional[int] = ..., fail_after: _Optional[int] = ...) -> None: ...

class EchoReply(_message.Message):
    __slots__ = ("message",)
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    message: str
    def __init__(self, message: _Optional[str] = ...) -> None: ...
