import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class StatsGranularity(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    STATS_GRANULARITY_UNSPECIFIED: _ClassVar[StatsGranularity]
    STATS_GRANULARITY_HOUR: _ClassVar[StatsGranularity]
    STATS_GRANULARITY_DAY: _ClassVar[StatsGranularity]

class StatsGroupBy(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    STATS_GROUP_BY_UNSPECIFIED: _ClassVar[StatsGroupBy]
    STATS_GROUP_BY_NONE: _ClassVar[StatsGroupBy]
    STATS_GROUP_BY_TAG: _ClassVar[StatsGroupBy]
    STATS_GROUP_BY_TEMPLATE: _ClassVar[StatsGroupBy]
    STATS_GROUP_BY_TEMPLATE_VARIANT: _ClassVar[StatsGroupBy]
STATS_GRANULARITY_UNSPECIFIED: StatsGranularity
STATS_GRANULARITY_HOUR: StatsGranularity
STATS_GRANULARITY_DAY: StatsGranularity
STATS_GROUP_BY_UNSPECIFIED: StatsGroupBy
STATS_GROUP_BY_NONE: StatsGroupBy
STATS_GROUP_BY_TAG: StatsGroupBy
STATS_GROUP_BY_TEMPLATE: StatsGroupBy
STATS_GROUP_BY_TEMPLATE_VARIANT: StatsGroupBy

class StatsCounts(_message.Message):
    __slots__ = ("sent", "delivered", "bounced_hard", "bounced_soft", "complained", "unsubscribed", "suppressed", "failed", "deferred", "opened", "unique_opened", "machine_opened", "clicked", "unique_clicked", "machine_clicked")
    SENT_FIELD_NUMBER: _ClassVar[int]
    DELIVERED_FIELD_NUMBER: _ClassVar[int]
    BOUNCED_HARD_FIELD_NUMBER: _ClassVar[int]
    BOUNCED_SOFT_FIELD_NUMBER: _ClassVar[int]
    COMPLAINED_FIELD_NUMBER: _ClassVar[int]
    UNSUBSCRIBED_FIELD_NUMBER: _ClassVar[int]
    SUPPRESSED_FIELD_NUMBER: _ClassVar[int]
    FAILED_FIELD_NUMBER: _ClassVar[int]
    DEFERRED_FIELD_NUMBER: _ClassVar[int]
    OPENED_FIELD_NUMBER: _ClassVar[int]
    UNIQUE_OPENED_FIELD_NUMBER: _ClassVar[int]
    MACHINE_OPENED_FIELD_NUMBER: _ClassVar[int]
    CLICKED_FIELD_NUMBER: _ClassVar[int]
    UNIQUE_CLICKED_FIELD_NUMBER: _ClassVar[int]
    MACHINE_CLICKED_FIELD_NUMBER: _ClassVar[int]
    sent: int
    delivered: int
    bounced_hard: int
    bounced_soft: int
    complained: int
    unsubscribed: int
    suppressed: int
    failed: int
    deferred: int
    opened: int
    unique_opened: int
    machine_opened: int
    clicked: int
    unique_clicked: int
    machine_clicked: int
    def __init__(self, sent: _Optional[int] = ..., delivered: _Optional[int] = ..., bounced_hard: _Optional[int] = ..., bounced_soft: _Optional[int] = ..., complained: _Optional[int] = ..., unsubscribed: _Optional[int] = ..., suppressed: _Optional[int] = ..., failed: _Optional[int] = ..., deferred: _Optional[int] = ..., opened: _Optional[int] = ..., unique_opened: _Optional[int] = ..., machine_opened: _Optional[int] = ..., clicked: _Optional[int] = ..., unique_clicked: _Optional[int] = ..., machine_clicked: _Optional[int] = ...) -> None: ...

class StatsBucket(_message.Message):
    __slots__ = ("start_time", "counts")
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    COUNTS_FIELD_NUMBER: _ClassVar[int]
    start_time: _timestamp_pb2.Timestamp
    counts: StatsCounts
    def __init__(self, start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., counts: _Optional[_Union[StatsCounts, _Mapping]] = ...) -> None: ...

class StatsGroup(_message.Message):
    __slots__ = ("tag", "template_id", "template_variant", "buckets", "totals")
    TAG_FIELD_NUMBER: _ClassVar[int]
    TEMPLATE_ID_FIELD_NUMBER: _ClassVar[int]
    TEMPLATE_VARIANT_FIELD_NUMBER: _ClassVar[int]
    BUCKETS_FIELD_NUMBER: _ClassVar[int]
    TOTALS_FIELD_NUMBER: _ClassVar[int]
    tag: str
    template_id: str
    template_variant: str
    buckets: _containers.RepeatedCompositeFieldContainer[StatsBucket]
    totals: StatsCounts
    def __init__(self, tag: _Optional[str] = ..., template_id: _Optional[str] = ..., template_variant: _Optional[str] = ..., buckets: _Optional[_Iterable[_Union[StatsBucket, _Mapping]]] = ..., totals: _Optional[_Union[StatsCounts, _Mapping]] = ...) -> None: ...

class SmtpCodeCount(_message.Message):
    __slots__ = ("smtp_code", "count")
    SMTP_CODE_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    smtp_code: int
    count: int
    def __init__(self, smtp_code: _Optional[int] = ..., count: _Optional[int] = ...) -> None: ...

class DomainCount(_message.Message):
    __slots__ = ("domain", "count")
    DOMAIN_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    domain: str
    count: int
    def __init__(self, domain: _Optional[str] = ..., count: _Optional[int] = ...) -> None: ...

class FailurePatterns(_message.Message):
    __slots__ = ("bounce_codes", "bounce_domains", "deferral_codes", "deferral_domains")
    BOUNCE_CODES_FIELD_NUMBER: _ClassVar[int]
    BOUNCE_DOMAINS_FIELD_NUMBER: _ClassVar[int]
    DEFERRAL_CODES_FIELD_NUMBER: _ClassVar[int]
    DEFERRAL_DOMAINS_FIELD_NUMBER: _ClassVar[int]
    bounce_codes: _containers.RepeatedCompositeFieldContainer[SmtpCodeCount]
    bounce_domains: _containers.RepeatedCompositeFieldContainer[DomainCount]
    deferral_codes: _containers.RepeatedCompositeFieldContainer[SmtpCodeCount]
    deferral_domains: _containers.RepeatedCompositeFieldContainer[DomainCount]
    def __init__(self, bounce_codes: _Optional[_Iterable[_Union[SmtpCodeCount, _Mapping]]] = ..., bounce_domains: _Optional[_Iterable[_Union[DomainCount, _Mapping]]] = ..., deferral_codes: _Optional[_Iterable[_Union[SmtpCodeCount, _Mapping]]] = ..., deferral_domains: _Optional[_Iterable[_Union[DomainCount, _Mapping]]] = ...) -> None: ...
