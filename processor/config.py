"""Settings: code defaults <- a TOML file <- PROCESSOR_* environment variables.

The file is $PROCESSOR_CONFIG when set (it must then exist), else config/processor.toml when present.
Every value is checked here, at start, and a bad one stops the program with a message naming the setting.
"""

from __future__ import annotations

import difflib
import logging
import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import msgspec

from processor.events.catalog import Catalog, CatalogError
from processor.events.timefmt import InvalidTime, normalize_time
from processor.stores.feed import DEFAULT_MAX_AGE, DEFAULT_MAX_CHANGES, FeedRetention
from processor.stores.history import HistoryRetention
from processor.stores.urls import is_postgres_url, is_sqlite_url

DEFAULT_FILE = Path("config/processor.toml")
log = logging.getLogger(__name__)


class ConfigError(ValueError):
    """A setting is wrong; the message starts with the setting's name."""


@dataclass(frozen=True)
class Settings:
    # Settings that may hold credentials are kept out of repr(), so a logged Settings shows none.
    store_url: str = field(default="sqlite:///data/projection.sqlite", repr=False)
    allowed_sources: tuple[str, ...] = ()
    sources_configured: bool = False  # allowed_sources was set, to an empty list on purpose or not
    max_body_bytes: int = 1024 * 1024
    max_depth: int = 32
    reorder_window: float = 2.0
    reorder_max_events: int = 100_000
    reorder_max_bytes: int = 128 << 20
    ingest_cache_objects: int = 50_000
    ingest_cache_bytes: int = 64 << 20
    ingest_processes: int = 1  # fold processes of an ingest (files, Capture); 0: one per core
    eventhub_connection_string: str | None = field(default=None, repr=False)
    eventhub_namespace: str | None = None
    eventhub_name: str = "events"
    consumer_group: str = "$Default"
    starting_position: str = "earliest"
    prefetch: int = 300
    max_batch_size: int = 300
    # `processor replay`: feeder processes (None: the machine's cores), and their larger prefetch and batches
    # (measured: one bare consumer reads ~9k msg/s at prefetch 300, ~13k at 3000).
    replay_feeders: int | None = None
    replay_prefetch: int = 3000
    replay_batch: int = 1000
    # The SDK's own retries of a failed operation (then the worker's, which never give up, take over).
    eventhub_retry_mode: str = "exponential"
    eventhub_retry_total: int = 3
    eventhub_retry_backoff_factor: float = 0.8
    eventhub_retry_backoff_max: float = 120.0
    eventhub_transport: str = "amqp"
    eventhub_proxy: str | None = field(default=None, repr=False)
    eventhub_custom_endpoint: str | None = None
    load_balancing_interval: float = 10.0
    ownership_expiration: float = 60.0
    checkpoint_url: str | None = "sqlite:///data/checkpoints.sqlite"
    checkpoint_connection_string: str | None = field(default=None, repr=False)
    checkpoint_account_url: str | None = None
    checkpoint_container: str = "checkpoints"
    checkpoint_every_events: int = 1000
    checkpoint_every_seconds: float = 1.0
    shutdown_timeout: float = 20.0
    not_found_timeout: float = 300.0
    http_address: str = "0.0.0.0:8080"
    http_allowed_hosts: tuple[str, ...] = ()
    api_token: str | None = field(default=None, repr=False)
    log_level: str = "INFO"
    capture_format: str = "{Namespace}/{EventHub}/{PartitionId}/{Year}/{Month}/{Day}/{Hour}/{Minute}/{Second}"
    capture_on_corrupt: str = "stop"
    capture_connection_string: str | None = field(default=None, repr=False)
    log_format: str = "text"
    # OpenTelemetry: off by default; otlp or azure_monitor export a span per commit and the Azure SDK's spans.
    tracing_exporter: str = "none"
    tracing_otlp_endpoint: str | None = None
    tracing_connection_string: str | None = field(default=None, repr=False)
    catalog_types: tuple[Mapping[str, Any], ...] = field(default=())
    catalog_reducers: tuple[Mapping[str, Any], ...] = field(default=())
    # The change feed's retention: at most this many changes and none older (0: no limit).
    feed_retention_changes: int = DEFAULT_MAX_CHANGES
    feed_retention_seconds: float = DEFAULT_MAX_AGE
    # Push the change feed to this URL (processor.http.webhook), signed with the secret.
    webhook_url: str | None = field(default=None, repr=False)
    webhook_secret: str | None = field(default=None, repr=False)
    webhook_batch: int = 100
    webhook_timeout: float = 10.0
    # Object history (processor.stores.history): events kept per object (0: off) and for how long.
    history_per_object: int = 0
    history_seconds: float = DEFAULT_MAX_AGE

    def catalog(self) -> Catalog:
        return build_catalog(self.catalog_types, reducers=self.catalog_reducers)

    def feed_retention(self) -> FeedRetention:
        return FeedRetention(self.feed_retention_changes, self.feed_retention_seconds)

    def object_history(self) -> HistoryRetention | None:
        return HistoryRetention(self.history_per_object, self.history_seconds) if self.history_per_object else None

    def checkpoint_kind(self) -> str:
        return "blob" if (self.checkpoint_connection_string or self.checkpoint_account_url) else "sqlite"


def settings_to_json(settings: Settings) -> str:
    """The settings as JSON, for a child process (`settings_from_json`): secrets included, so never logged."""
    return msgspec.json.encode(asdict(settings)).decode()


def settings_from_json(text: str) -> Settings:
    doc: dict[str, Any] = msgspec.json.decode(text)
    # JSON has no tuples: every list-valued setting goes back to the tuple Settings holds.
    fields: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in doc.items()}
    return Settings(**fields)


# --- parsers: each takes the raw value and returns it checked, or raises ValueError with what was expected


def _text(v: Any) -> str:
    if not isinstance(v, str) or not v.strip():
        raise ValueError("expected a non-empty string")
    return v.strip()


def _optional_text(v: Any) -> str | None:
    if v is None or (isinstance(v, str) and not v.strip()):
        return None
    return _text(v)


def _ascii_number(v: Any) -> Any:
    # int() and float() also read Arabic-Indic or full-width digits; a setting is written in ASCII.
    if isinstance(v, bool) or (isinstance(v, str) and not v.isascii()):
        raise ValueError("expected a number written in ASCII digits")
    return v


def _positive_int(v: Any) -> int:
    v = _ascii_number(v)
    if isinstance(v, bool):
        raise ValueError("expected a whole number")
    try:
        n = int(v)
    except (TypeError, ValueError):
        raise ValueError("expected a whole number") from None
    if isinstance(v, float) or n < 1:
        raise ValueError("expected a whole number >= 1")
    return n


def _seconds(v: Any) -> float:
    v = _ascii_number(v)
    try:
        x = float(v)
    except (TypeError, ValueError):
        raise ValueError("expected a number of seconds") from None
    if not (x >= 0 and x != float("inf")):
        raise ValueError("expected a number of seconds >= 0")
    return x


def _positive_seconds(v: Any) -> float:
    x = _seconds(v)
    if x == 0:
        raise ValueError("expected a number of seconds > 0")
    return x


def _sources(v: Any) -> tuple[str, ...]:
    if isinstance(v, str):
        v = v.split(",")
    if not isinstance(v, (list, tuple)) or not all(isinstance(s, str) for s in v):
        raise ValueError("expected a comma-separated list (or TOML array) of resource ids")
    return tuple(s.strip() for s in v if s.strip())


def _store_url(v: Any) -> str:
    url = _text(v)
    if is_sqlite_url(url) or is_postgres_url(url):
        return url
    raise ValueError("expected sqlite:///PATH (relative), sqlite:////PATH (absolute) or postgresql://USER@HOST/DB")


def _checkpoint_url(v: Any) -> str | None:
    url = _optional_text(v)
    if url is None or url == "memory":
        return url
    if is_sqlite_url(url):
        return url
    raise ValueError("expected sqlite:///PATH or 'memory'")


def _starting_position(v: Any) -> str:
    text = _text(v)
    if text in ("earliest", "latest"):
        return text
    try:
        normalize_time(text)
    except InvalidTime:
        raise ValueError("expected earliest, latest or an ISO-8601 time such as 2026-01-31T00:00:00Z") from None
    return text


def _http_address(v: Any) -> str:
    text = _text(v)
    host, _, port = text.rpartition(":")
    if not host or not (port.isascii() and port.isdigit()) or not 0 <= int(port) <= 65535:
        raise ValueError("expected HOST:PORT, e.g. 0.0.0.0:8080")
    return text


_HOST_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-._")


def _host_names(v: Any) -> tuple[str, ...]:
    if isinstance(v, str):
        v = v.split(",")
    if not isinstance(v, (list, tuple)) or not all(isinstance(s, str) for s in v):
        raise ValueError("expected a comma-separated list (or TOML array) of host names")
    # Matched against the Host header without its port, so a scheme or a port here could never match.
    names = tuple(s.strip().lower().rstrip(".") for s in v if s.strip())
    if any(name != "*" and not (name and set(name) <= _HOST_CHARS) for name in names):
        raise ValueError("expected host names without scheme or port (IP addresses are always allowed), or *")
    return names


def _log_level(v: Any) -> str:
    text = _text(v).upper()
    if text not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ValueError("expected DEBUG, INFO, WARNING or ERROR")
    return text


# Event Hubs Capture names its files with these tokens; a custom format may reorder them but must hold each.
CAPTURE_TOKENS = ("Namespace", "EventHub", "PartitionId", "Year", "Month", "Day", "Hour", "Minute", "Second")


def _capture_format(v: Any) -> str:
    import re

    text = _text(v).strip("/")
    tokens = re.findall(r"{([^{}]*)}", text)
    unknown = sorted(set(tokens) - set(CAPTURE_TOKENS))
    if unknown or sorted(tokens) != sorted(CAPTURE_TOKENS):
        what = f"unknown {{{unknown[0]}}}" if unknown else "each token exactly once"
        raise ValueError(f"expected a Capture file name format holding {{{'}, {'.join(CAPTURE_TOKENS)}}} ({what})")
    return text


def _on_corrupt(v: Any) -> str:
    text = _text(v).lower()
    if text not in ("stop", "skip"):
        raise ValueError("expected stop (the run stops at a corrupt Capture file) or skip (it is reported, skipped)")
    return text


def _count(v: Any) -> int:
    v = _ascii_number(v)
    try:
        n = int(v)
    except (TypeError, ValueError):
        raise ValueError("expected a whole number") from None
    if isinstance(v, float) or n < 0:
        raise ValueError("expected a whole number >= 0")
    return n


def _one_of(*choices: str) -> Callable[[Any], str]:
    def parse(v: Any) -> str:
        text = _text(v).lower()
        if text not in choices:
            raise ValueError("expected " + " or ".join(choices))
        return text

    return parse


def _proxy(v: Any) -> str | None:
    text = _optional_text(v)
    if text is None:
        return None
    url = urlsplit(text if "//" in text else "http://" + text)
    try:
        port = url.port
    except ValueError:
        port = None
    if url.scheme != "http" or not url.hostname or port is None:
        raise ValueError("expected http://[USER:PASSWORD@]HOST:PORT")
    return text


def _endpoint(v: Any) -> str | None:
    text = _optional_text(v)
    if text is None:
        return None
    url = urlsplit(text if "//" in text else "sb://" + text)
    try:
        valid = url.scheme in ("sb", "amqps", "https", "wss") and bool(url.hostname) and url.port != 0
    except ValueError:  # a port that is not a number, or out of range
        valid = False
    if not valid:
        raise ValueError("expected sb://HOST[:PORT] or https://HOST[:PORT]")
    return text


def _webhook_url(v: Any) -> str | None:
    text = _optional_text(v)
    if text is None:
        return None
    url = urlsplit(text)
    try:
        valid = url.scheme in ("http", "https") and bool(url.hostname) and url.port != 0
    except ValueError:  # a port that is not a number, or out of range
        valid = False
    if not valid:
        raise ValueError("expected http(s)://HOST[:PORT]/PATH")
    return text


def _otlp_endpoint(v: Any) -> str | None:
    text = _optional_text(v)
    if text is None:
        return None
    url = urlsplit(text)
    try:
        valid = url.scheme in ("http", "https") and bool(url.hostname) and url.port != 0
    except ValueError:  # a port that is not a number, or out of range
        valid = False
    if not valid:
        raise ValueError("expected the collector's base URL, http(s)://HOST:PORT (e.g. http://otel-collector:4318)")
    return text


def _app_insights(v: Any) -> str | None:
    text = _optional_text(v)
    if text is None:
        return None
    keys = {part.split("=", 1)[0].strip().lower() for part in text.split(";") if "=" in part}
    if "instrumentationkey" not in keys:
        raise ValueError("expected an Application Insights connection string (InstrumentationKey=...;...)")
    return text


def _log_format(v: Any) -> str:
    text = _text(v).lower()
    if text not in ("text", "json"):
        raise ValueError("expected text or json")
    return text


# attribute -> (section, key in the TOML file, environment variable, parser)
_FIELDS: dict[str, tuple[str, str, str, Callable[[Any], Any]]] = {
    "store_url": ("store", "url", "PROCESSOR_STORE_URL", _store_url),
    "allowed_sources": ("sources", "allowed", "PROCESSOR_ALLOWED_SOURCES", _sources),
    "max_body_bytes": ("decode", "max_body_bytes", "PROCESSOR_MAX_BODY_BYTES", _positive_int),
    "max_depth": ("decode", "max_depth", "PROCESSOR_MAX_DEPTH", _positive_int),
    "reorder_window": ("reorder", "window", "PROCESSOR_REORDER_WINDOW", _seconds),
    "reorder_max_events": ("reorder", "max_events", "PROCESSOR_REORDER_MAX_EVENTS", _positive_int),
    "reorder_max_bytes": ("reorder", "max_bytes", "PROCESSOR_REORDER_MAX_BYTES", _positive_int),
    "ingest_cache_objects": ("ingest", "cache_objects", "PROCESSOR_INGEST_CACHE_OBJECTS", _positive_int),
    "ingest_cache_bytes": ("ingest", "cache_bytes", "PROCESSOR_INGEST_CACHE_BYTES", _positive_int),
    "ingest_processes": ("ingest", "processes", "PROCESSOR_INGEST_PROCESSES", _count),
    "eventhub_connection_string": (
        "eventhub",
        "connection_string",
        "PROCESSOR_EVENTHUB_CONNECTION_STRING",
        _optional_text,
    ),
    "eventhub_namespace": ("eventhub", "namespace", "PROCESSOR_EVENTHUB_NAMESPACE", _optional_text),
    "eventhub_name": ("eventhub", "name", "PROCESSOR_EVENTHUB_NAME", _text),
    "consumer_group": ("eventhub", "consumer_group", "PROCESSOR_CONSUMER_GROUP", _text),
    "starting_position": ("eventhub", "starting_position", "PROCESSOR_STARTING_POSITION", _starting_position),
    "prefetch": ("eventhub", "prefetch", "PROCESSOR_PREFETCH", _positive_int),
    "max_batch_size": ("eventhub", "max_batch_size", "PROCESSOR_MAX_BATCH_SIZE", _positive_int),
    "replay_feeders": ("replay", "feeders", "PROCESSOR_REPLAY_FEEDERS", _positive_int),
    "replay_prefetch": ("replay", "prefetch", "PROCESSOR_REPLAY_PREFETCH", _positive_int),
    "replay_batch": ("replay", "batch", "PROCESSOR_REPLAY_BATCH", _positive_int),
    "eventhub_retry_mode": (
        "eventhub",
        "retry_mode",
        "PROCESSOR_EVENTHUB_RETRY_MODE",
        _one_of("exponential", "fixed"),
    ),
    "eventhub_retry_total": ("eventhub", "retry_total", "PROCESSOR_EVENTHUB_RETRY_TOTAL", _count),
    "eventhub_retry_backoff_factor": (
        "eventhub",
        "retry_backoff_factor",
        "PROCESSOR_EVENTHUB_RETRY_BACKOFF_FACTOR",
        _seconds,
    ),
    "eventhub_retry_backoff_max": (
        "eventhub",
        "retry_backoff_max",
        "PROCESSOR_EVENTHUB_RETRY_BACKOFF_MAX",
        _positive_seconds,
    ),
    "eventhub_transport": ("eventhub", "transport", "PROCESSOR_EVENTHUB_TRANSPORT", _one_of("amqp", "websockets")),
    "eventhub_proxy": ("eventhub", "proxy", "PROCESSOR_EVENTHUB_PROXY", _proxy),
    "eventhub_custom_endpoint": (
        "eventhub",
        "custom_endpoint_address",
        "PROCESSOR_EVENTHUB_CUSTOM_ENDPOINT_ADDRESS",
        _endpoint,
    ),
    "load_balancing_interval": (
        "eventhub",
        "load_balancing_interval",
        "PROCESSOR_LOAD_BALANCING_INTERVAL",
        _positive_seconds,
    ),
    "ownership_expiration": ("eventhub", "ownership_expiration", "PROCESSOR_OWNERSHIP_EXPIRATION", _positive_seconds),
    "checkpoint_url": ("checkpoint", "url", "PROCESSOR_CHECKPOINT_URL", _checkpoint_url),
    "checkpoint_connection_string": (
        "checkpoint",
        "connection_string",
        "PROCESSOR_CHECKPOINT_CONNECTION_STRING",
        _optional_text,
    ),
    "checkpoint_account_url": ("checkpoint", "account_url", "PROCESSOR_CHECKPOINT_ACCOUNT_URL", _optional_text),
    "checkpoint_container": ("checkpoint", "container", "PROCESSOR_CHECKPOINT_CONTAINER", _text),
    "checkpoint_every_events": ("checkpoint", "every_events", "PROCESSOR_CHECKPOINT_EVERY_EVENTS", _positive_int),
    "checkpoint_every_seconds": (
        "checkpoint",
        "every_seconds",
        "PROCESSOR_CHECKPOINT_EVERY_SECONDS",
        _positive_seconds,
    ),
    "shutdown_timeout": ("worker", "shutdown_timeout", "PROCESSOR_SHUTDOWN_TIMEOUT", _positive_seconds),
    "not_found_timeout": ("worker", "not_found_timeout", "PROCESSOR_NOT_FOUND_TIMEOUT", _seconds),
    "http_address": ("http", "address", "PROCESSOR_HTTP_ADDRESS", _http_address),
    "http_allowed_hosts": ("http", "allowed_hosts", "PROCESSOR_HTTP_ALLOWED_HOSTS", _host_names),
    "api_token": ("http", "token", "PROCESSOR_API_TOKEN", _optional_text),
    "log_level": ("log", "level", "PROCESSOR_LOG_LEVEL", _log_level),
    "capture_format": ("capture", "format", "PROCESSOR_CAPTURE_FORMAT", _capture_format),
    "capture_on_corrupt": ("capture", "on_corrupt", "PROCESSOR_CAPTURE_ON_CORRUPT", _on_corrupt),
    "capture_connection_string": (
        "capture",
        "connection_string",
        "PROCESSOR_CAPTURE_CONNECTION_STRING",
        _optional_text,
    ),
    "log_format": ("log", "format", "PROCESSOR_LOG_FORMAT", _log_format),
    "feed_retention_changes": ("feed", "retention_changes", "PROCESSOR_FEED_RETENTION_CHANGES", _count),
    "feed_retention_seconds": ("feed", "retention_seconds", "PROCESSOR_FEED_RETENTION_SECONDS", _seconds),
    "webhook_url": ("webhook", "url", "PROCESSOR_WEBHOOK_URL", _webhook_url),
    "webhook_secret": ("webhook", "secret", "PROCESSOR_WEBHOOK_SECRET", _optional_text),
    "webhook_batch": ("webhook", "batch", "PROCESSOR_WEBHOOK_BATCH", _positive_int),
    "webhook_timeout": ("webhook", "timeout", "PROCESSOR_WEBHOOK_TIMEOUT", _positive_seconds),
    "history_per_object": ("history", "per_object", "PROCESSOR_HISTORY_PER_OBJECT", _count),
    "history_seconds": ("history", "seconds", "PROCESSOR_HISTORY_SECONDS", _seconds),
    "tracing_exporter": (
        "tracing",
        "exporter",
        "PROCESSOR_TRACING_EXPORTER",
        _one_of("none", "otlp", "azure_monitor"),
    ),
    "tracing_otlp_endpoint": ("tracing", "otlp_endpoint", "PROCESSOR_TRACING_OTLP_ENDPOINT", _otlp_endpoint),
    "tracing_connection_string": (
        "tracing",
        "connection_string",
        "PROCESSOR_TRACING_CONNECTION_STRING",
        _app_insights,
    ),
}


# The command-line flags that override a setting, as the commands spell them (an error names what was typed).
_FLAGS = {"store_url": "--store", "http_address": "--address", "starting_position": "--from"}
_FLAGS["replay_feeders"] = "--feeders"
_FLAGS["log_level"] = "--log-level"


def env_names() -> list[str]:
    return sorted(["PROCESSOR_CONFIG"] + [spec[2] for spec in _FIELDS.values()])


def load_settings(env: Mapping[str, str] | None = None, path: str | Path | None = None, **overrides: Any) -> Settings:
    """Read the settings. `overrides` (from command-line flags) win over everything, None ones are ignored."""
    env = os.environ if env is None else env
    values: dict[str, Any] = {}
    file = _config_file(env, path)
    if file.is_file():
        values.update(_from_file(file))
    for attr, (_section, _key, var, parse) in _FIELDS.items():
        if var in env:
            values[attr] = _parse(var, parse, env[var], attr in _SECRET)
    for attr, value in overrides.items():
        if value is not None:
            flag = _FLAGS.get(attr, f"--{attr.replace('_', '-')}")
            values[attr] = _parse(flag, _FIELDS[attr][3], value, attr in _SECRET)
    _warn_near_misses(env)
    values["sources_configured"] = "allowed_sources" in values
    settings = replace(Settings(), **values)
    build_catalog(settings.catalog_types, origin=str(file), reducers=settings.catalog_reducers)
    if settings.eventhub_connection_string and settings.eventhub_namespace:
        raise ConfigError(
            "PROCESSOR_EVENTHUB_NAMESPACE: set either it (with Azure AD credentials) "
            "or PROCESSOR_EVENTHUB_CONNECTION_STRING, not both"
        )
    if settings.webhook_url and not settings.webhook_secret:
        raise ConfigError("PROCESSOR_WEBHOOK_SECRET: required with PROCESSOR_WEBHOOK_URL (it signs every request)")
    if (
        settings.tracing_exporter == "azure_monitor"
        and not settings.tracing_connection_string
        and not env.get("APPLICATIONINSIGHTS_CONNECTION_STRING")
    ):
        raise ConfigError(
            "PROCESSOR_TRACING_CONNECTION_STRING: the azure_monitor exporter needs an Application Insights "
            "connection string (this or APPLICATIONINSIGHTS_CONNECTION_STRING)"
        )
    return settings


def _config_file(env: Mapping[str, str], path: str | Path | None) -> Path:
    explicit = path or env.get("PROCESSOR_CONFIG")
    file = Path(explicit) if explicit else DEFAULT_FILE
    if explicit and not file.is_file():
        raise ConfigError(f"PROCESSOR_CONFIG: no such file {str(file)!r}")
    return file


def load_log_level(
    env: Mapping[str, str] | None = None, path: str | Path | None = None, flag: str | None = None
) -> str:
    """The log level alone (file, then variable, then `flag`: --log-level), for the command line to set logging up
    before a command reads the other settings: their warnings and errors go through the log."""
    if flag is not None:
        return str(_parse("--log-level", _log_level, flag))
    return _early_log_setting("log_level", env, path)


def load_log_format(env: Mapping[str, str] | None = None, path: str | Path | None = None) -> str:
    """The log format alone (text or json), read early like the level."""
    return _early_log_setting("log_format", env, path)


def _early_log_setting(attr: str, env: Mapping[str, str] | None, path: str | Path | None) -> str:
    env = os.environ if env is None else env
    section_name, key, var, parse = _FIELDS[attr]
    value: str = getattr(Settings, attr)
    file = _config_file(env, path)
    if file.is_file():
        try:
            section = tomllib.loads(file.read_text("utf-8")).get(section_name, {})
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"{file}: cannot read: {exc}") from None
        if isinstance(section, dict) and key in section:
            value = _parse(f"{file} [{section_name}] {key}", parse, section[key])
    if var in env:
        value = _parse(var, parse, env[var])
    return value


_warned_any_source = False


def warn_if_any_source(settings: Settings) -> None:
    """Say, once per process, that events of every source are accepted, unless someone chose that (an empty list
    set in the file or the variable)."""
    global _warned_any_source
    if settings.allowed_sources or settings.sources_configured or _warned_any_source:
        return
    _warned_any_source = True
    log.warning(
        "no allowed sources configured (PROCESSOR_ALLOWED_SOURCES): accepting events from any source; "
        "set it to an empty list to accept them all without this warning"
    )


def _warn_near_misses(env: Mapping[str, str]) -> None:
    """A misspelt variable (PROCESSOR_API_TOKN) would silently leave its default: say so. Other PROCESSOR_*
    names are left alone: Kubernetes itself sets PROCESSOR_SERVICE_HOST and the like for a service of that name."""
    known = set(env_names()) | {"PROCESSOR_FEEDER_SETTINGS", "PROCESSOR_TEST_POSTGRES_URL"}
    for name in env:
        if name.startswith("PROCESSOR_") and name not in known:
            close = difflib.get_close_matches(name, known, n=1, cutoff=0.85)
            if close:
                log.warning("%s is not a setting of the processor; did you mean %s?", name, close[0])


def build_catalog(
    specs: tuple[Mapping[str, Any], ...], origin: str = "config", reducers: tuple[Mapping[str, Any], ...] = ()
) -> Catalog:
    try:
        return Catalog.from_specs(
            [dict(s) for s in specs],
            f"{origin} [[catalog.types]]",
            base=Catalog.default(),
            reducers=[dict(r) for r in reducers],
        )
    except CatalogError as exc:
        raise ConfigError(str(exc)) from None


# Their values may hold passwords or keys: an error names the setting and what was expected, not the value.
_SECRET = frozenset({"store_url", "eventhub_connection_string", "checkpoint_connection_string", "api_token"})
_SECRET |= {"capture_connection_string"}
_SECRET |= {"eventhub_proxy"}  # http://USER:PASSWORD@HOST:PORT
_SECRET |= {"webhook_url", "webhook_secret"}  # a URL may carry credentials or a token
_SECRET |= {"tracing_connection_string"}  # holds the instrumentation key


def _parse(name: str, parse: Callable[[Any], Any], raw: Any, secret: bool = False) -> Any:
    try:
        return parse(raw)
    except ValueError as exc:
        shown = f"a value of {len(str(raw))} characters (not shown: it may hold a secret)" if secret else repr(raw)
        raise ConfigError(f"{name}: {exc}, got {shown}") from None


def _from_file(file: Path) -> dict[str, Any]:
    try:
        doc = tomllib.loads(file.read_text("utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{file}: cannot read: {exc}") from None
    known = {(section, key): attr for attr, (section, key, _v, _p) in _FIELDS.items()}
    values: dict[str, Any] = {}
    for section, table in doc.items():
        if section == "catalog":
            if not isinstance(table, dict) or set(table) - {"types", "reducers"}:
                raise ConfigError(f"{file} [catalog]: holds only [[catalog.types]] and [[catalog.reducers]]")
            for key, setting in (("types", "catalog_types"), ("reducers", "catalog_reducers")):
                items = table.get(key, [])
                if not isinstance(items, list):
                    raise ConfigError(f"{file} [catalog]: '{key}' must be an array of tables ([[catalog.{key}]])")
                values[setting] = tuple(items)
            continue
        if not isinstance(table, dict):
            raise ConfigError(f"{file}: '{section}' must be a table")
        for key, raw in table.items():
            attr = known.get((section, key))
            if attr is None:
                raise ConfigError(f"{file} [{section}] {key}: unknown setting")
            values[attr] = _parse(f"{file} [{section}] {key}", _FIELDS[attr][3], raw, attr in _SECRET)
    return values
