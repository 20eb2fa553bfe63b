from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class EmailStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    EMAIL_STATUS_UNSPECIFIED: _ClassVar[EmailStatus]
    EMAIL_STATUS_QUEUED: _ClassVar[EmailStatus]
    EMAIL_STATUS_SENDING: _ClassVar[EmailStatus]
    EMAIL_STATUS_SENT: _ClassVar[EmailStatus]
    EMAIL_STATUS_DEFERRED: _ClassVar[EmailStatus]
    EMAIL_STATUS_BOUNCED: _ClassVar[EmailStatus]
    EMAIL_STATUS_FAILED: _ClassVar[EmailStatus]
    EMAIL_STATUS_SUPPRESSED: _ClassVar[EmailStatus]
    EMAIL_STATUS_SCHEDULED: _ClassVar[EmailStatus]
    EMAIL_STATUS_CANCELED: _ClassVar[EmailStatus]
EMAIL_STATUS_UNSPECIFIED: EmailStatus
EMAIL_STATUS_QUEUED: EmailStatus
EMAIL_STATUS_SENDING: EmailStatus
EMAIL_STATUS_SENT: EmailStatus
EMAIL_STATUS_DEFERRED: EmailStatus
EMAIL_STATUS_BOUNCED: EmailStatus
EMAIL_STATUS_FAILED: EmailStatus
EMAIL_STATUS_SUPPRESSED: EmailStatus
EMAIL_STATUS_SCHEDULED: EmailStatus
EMAIL_STATUS_CANCELED: EmailStatus

class Attachment(_message.Message):
    __slots__ = ("filename", "content_type", "content", "content_id")
    FILENAME_FIELD_NUMBER: _ClassVar[int]
    CONTENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    CONTENT_ID_FIELD_NUMBER: _ClassVar[int]
    filename: str
    content_type: str
    content: bytes
    content_id: str
    def __init__(self, filename: _Optional[str] = ..., content_type: _Optional[str] = ..., content: _Optional[bytes] = ..., content_id: _Optional[str] = ...) -> None: ...

class RecipientStatus(_message.Message):
    __slots__ = ("address", "status", "smtp_code", "smtp_message")
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    SMTP_CODE_FIELD_NUMBER: _ClassVar[int]
    SMTP_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    address: str
    status: EmailStatus
    smtp_code: int
    smtp_message: str
    def __init__(self, address: _Optional[str] = ..., status: _Optional[_Union[EmailStatus, str]] = ..., smtp_code: _Optional[int] = ..., smtp_message: _Optional[str] = ...) -> None: ...
