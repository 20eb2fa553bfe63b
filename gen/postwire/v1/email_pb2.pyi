from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from typing import ClassVar as _ClassVar

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
EMAIL_STATUS_UNSPECIFIED: EmailStatus
EMAIL_STATUS_QUEUED: EmailStatus
EMAIL_STATUS_SENDING: EmailStatus
EMAIL_STATUS_SENT: EmailStatus
EMAIL_STATUS_DEFERRED: EmailStatus
EMAIL_STATUS_BOUNCED: EmailStatus
EMAIL_STATUS_FAILED: EmailStatus
