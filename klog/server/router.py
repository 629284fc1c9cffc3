"""Request routing: API key → handler, the advertised version table, and error codes.

This is the one place where typed exceptions become Kafka error codes
(``error_code_for``). Handlers raise ``KafkaError`` (or storage/config errors) for a
whole request, or call ``error_code_for`` for a single partition's failure. A handler
that raises anything else is a bug: the router logs the traceback and answers
UNKNOWN_SERVER_ERROR, and the node stays up.

Version rules: each handler advertises a contiguous range. A request for an API the
node does not serve, or a version outside its range, closes the connection — except
ApiVersions, which answers with a v0 body carrying UNSUPPORTED_VERSION and the
supported ranges (clients then retry with a version both sides know).

The router holds no per-request state; one instance serves every connection.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from klog.segment import errors as storage
from klog.server.config import ConfigError
from klog.wire import RESPONSES, ApiVersionsResponse
from klog.wire.errors import ErrorCode, KafkaError

log = logging.getLogger(__name__)

API_VERSIONS_KEY = 18

_STORAGE_CODES: dict[type[Exception], ErrorCode] = {
    storage.CorruptBatchError: ErrorCode.CORRUPT_MESSAGE,
    storage.InvalidRecordError: ErrorCode.INVALID_RECORD,
    storage.RecordTooLargeError: ErrorCode.MESSAGE_TOO_LARGE,
    storage.RecordBatchTooLargeError: ErrorCode.RECORD_LIST_TOO_LARGE,
    storage.OffsetOutOfRangeError: ErrorCode.OFFSET_OUT_OF_RANGE,
    storage.KafkaStorageError: ErrorCode.KAFKA_STORAGE_ERROR,
    storage.OutOfOrderSequenceError: ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER,
    storage.InvalidProducerEpochError: ErrorCode.INVALID_PRODUCER_EPOCH,
    storage.InvalidTxnStateError: ErrorCode.INVALID_TXN_STATE,
}


def error_code_for(exc: BaseException) -> int:
    """The Kafka error code a typed exception stands for; UNKNOWN_SERVER_ERROR otherwise."""
    if isinstance(exc, KafkaError):
        return int(exc.code)
    if isinstance(exc, ConfigError):
        return ErrorCode.INVALID_CONFIG
    for cls in type(exc).__mro__:
        code = _STORAGE_CODES.get(cls)
        if code is not None:
            return code
    return ErrorCode.UNKNOWN_SERVER_ERROR


def error_message_for(exc: BaseException) -> str | None:
    """A client-facing message for typed errors (the detail only: the code travels
    beside it); None for bugs, whose details stay in the log."""
    if isinstance(exc, KafkaError):
        return exc.detail or exc.message
    if error_code_for(exc) == ErrorCode.UNKNOWN_SERVER_ERROR:
        return None
    return str(exc)


HandlerFn = Callable[[Any, Any], Awaitable[Any]]


@dataclass(frozen=True)
class Api:
    """One served API: its key, advertised versions and handler coroutine."""

    key: int
    min_version: int
    max_version: int
    handler: HandlerFn


class Router:
    """Dispatch decoded requests to handlers and turn failures into error responses."""

    def __init__(self, apis: list[Api]) -> None:
        self.apis = {api.key: api for api in apis}

    def api_versions(self) -> list[ApiVersionsResponse.ApiVersion]:
        return [
            ApiVersionsResponse.ApiVersion(
                api_key=api.key, min_version=api.min_version, max_version=api.max_version
            )
            for api in sorted(self.apis.values(), key=lambda a: a.key)
        ]

    def supports(self, api_key: int, version: int) -> bool:
        api = self.apis.get(api_key)
        return api is not None and api.min_version <= version <= api.max_version

    async def __call__(self, request: Any, client: Any) -> Any:
        """Handle one request; returns the response body, or None for no response."""
        if not self.supports(request.api_key, request.api_version) or request.body is None:
            if request.api_key == API_VERSIONS_KEY:
                return self.unsupported_api_versions()
            raise UnsupportedRequest(
                f"unsupported request api_key={request.api_key} version={request.api_version}"
            )
        api = self.apis[request.api_key]
        try:
            return await api.handler(request, client)
        except Exception as exc:
            code = error_code_for(exc)
            if code == ErrorCode.UNKNOWN_SERVER_ERROR:
                log.exception(
                    "handler for api_key=%s v%s failed", request.api_key, request.api_version
                )
            return error_response(request, code, error_message_for(exc))

    def unsupported_api_versions(self) -> ApiVersionsResponse:
        """The v0-shaped answer to an ApiVersions request of an unknown version."""
        return ApiVersionsResponse(
            error_code=ErrorCode.UNSUPPORTED_VERSION, api_keys=self.api_versions()
        )


class UnsupportedRequest(Exception):
    """A request the node cannot answer in the client's version: close the connection."""


def error_response(request: Any, code: int, message: str | None = None) -> Any:
    """A response of the request's type that reports ``code`` for the whole request.

    Kafka builds these per API (AbstractRequest.getErrorResponse). Here one generic rule
    covers them: the response keeps its defaults, sets a top-level ``error_code`` and
    ``error_message`` when the version has them, and mirrors the request's topics and
    partitions with ``code`` where the response lists per-partition results.
    """
    response_cls = RESPONSES[request.api_key]
    response = response_cls()
    if hasattr(response, "error_code"):
        response.error_code = code
    if hasattr(response, "error_message") and message is not None:
        response.error_message = message
    _mirror_errors(request.body, response, code)
    return response


def _mirror_errors(request_body: Any, response: Any, code: int) -> None:
    """Fill per-topic/per-partition results for APIs whose response has no top-level code."""
    topics = getattr(request_body, "topics", None) or getattr(request_body, "topic_data", None)
    response_topics_field = "topics" if hasattr(response, "topics") else "responses"
    if not topics or not hasattr(response, response_topics_field):
        return
    response_topics = getattr(response, response_topics_field)
    if not isinstance(response_topics, list):
        return
    topic_cls = _item_class(type(response), response_topics_field)
    if topic_cls is None:
        return
    for topic in topics:
        item = topic_cls()
        for name_field in ("name", "topic"):
            if hasattr(item, name_field) and hasattr(topic, name_field):
                setattr(item, name_field, getattr(topic, name_field))
        if hasattr(item, "topic_id") and hasattr(topic, "topic_id"):
            item.topic_id = topic.topic_id
        if hasattr(item, "error_code"):
            item.error_code = code
        _mirror_partitions(topic, item, code)
        response_topics.append(item)


def _mirror_partitions(request_topic: Any, response_topic: Any, code: int) -> None:
    for req_field in ("partitions", "partition_data", "partition_indexes"):
        partitions = getattr(request_topic, req_field, None)
        if partitions:
            break
    else:
        return
    for resp_field in ("partitions", "partition_responses"):
        if isinstance(getattr(response_topic, resp_field, None), list):
            break
    else:
        return
    partition_cls = _item_class(type(response_topic), resp_field)
    if partition_cls is None:
        return
    for partition in partitions:
        index = partition if isinstance(partition, int) else _partition_index(partition)
        item = partition_cls()
        for field_name in ("partition_index", "index", "partition"):
            if hasattr(item, field_name):
                setattr(item, field_name, index)
                break
        if hasattr(item, "error_code"):
            item.error_code = code
        getattr(response_topic, resp_field).append(item)


def _partition_index(partition: Any) -> int:
    for field_name in ("partition_index", "index", "partition"):
        if hasattr(partition, field_name):
            return getattr(partition, field_name)
    return -1


def _item_class(cls: type, field_name: str) -> type | None:
    """The struct class of an array field, as declared by the wire schema."""
    for field_model in cls._FIELDS:
        if field_model.attr == field_name and field_model.struct is not None:
            return field_model.struct.cls
    return None
