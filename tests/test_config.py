"""Settings: file and environment, and that the shipped config file states the code's defaults."""

from pathlib import Path

import pytest

from processor.config import ConfigError, Settings, env_names, load_settings

ROOT = Path(__file__).resolve().parents[1]


def test_the_shipped_config_file_states_the_code_defaults():
    assert load_settings(env={}, path=ROOT / "config" / "processor.toml") == Settings()


def test_the_shipped_config_file_names_every_environment_variable():
    text = (ROOT / "config" / "processor.toml").read_text()
    missing = [name for name in env_names() if name != "PROCESSOR_CONFIG" and name not in text]
    assert missing == []


def test_environment_overrides_the_file(tmp_path):
    cfg = tmp_path / "p.toml"
    cfg.write_text('[store]\nurl = "sqlite:///a.sqlite"\n[reorder]\nwindow = 5\n')
    s = load_settings(env={"PROCESSOR_REORDER_WINDOW": "0.5", "PROCESSOR_ALLOWED_SOURCES": " a , B ,"}, path=cfg)
    assert (s.store_url, s.reorder_window, s.allowed_sources) == ("sqlite:///a.sqlite", 0.5, ("a", "B"))


@pytest.mark.parametrize(
    "env, named",
    [
        ({"PROCESSOR_CHECKPOINT_EVERY_EVENTS": "0"}, "PROCESSOR_CHECKPOINT_EVERY_EVENTS"),
        ({"PROCESSOR_HTTP_ADDRESS": "8080"}, "PROCESSOR_HTTP_ADDRESS"),
        ({"PROCESSOR_LOG_LEVEL": "chatty"}, "PROCESSOR_LOG_LEVEL"),
        ({"PROCESSOR_CHECKPOINT_URL": "redis://x"}, "PROCESSOR_CHECKPOINT_URL"),
        ({"PROCESSOR_LOG_FORMAT": "xml"}, "PROCESSOR_LOG_FORMAT"),
        ({"PROCESSOR_MAX_BATCH_SIZE": "0"}, "PROCESSOR_MAX_BATCH_SIZE"),
        ({"PROCESSOR_EVENTHUB_RETRY_MODE": "linear"}, "PROCESSOR_EVENTHUB_RETRY_MODE"),
        ({"PROCESSOR_EVENTHUB_RETRY_TOTAL": "-1"}, "PROCESSOR_EVENTHUB_RETRY_TOTAL"),
        ({"PROCESSOR_EVENTHUB_RETRY_BACKOFF_FACTOR": "soon"}, "PROCESSOR_EVENTHUB_RETRY_BACKOFF_FACTOR"),
        ({"PROCESSOR_EVENTHUB_RETRY_BACKOFF_MAX": "0"}, "PROCESSOR_EVENTHUB_RETRY_BACKOFF_MAX"),
        ({"PROCESSOR_EVENTHUB_TRANSPORT": "udp"}, "PROCESSOR_EVENTHUB_TRANSPORT"),
        ({"PROCESSOR_EVENTHUB_PROXY": "socks5://proxy:1080"}, "PROCESSOR_EVENTHUB_PROXY"),
        ({"PROCESSOR_EVENTHUB_PROXY": "http://proxy"}, "PROCESSOR_EVENTHUB_PROXY"),
        ({"PROCESSOR_EVENTHUB_CUSTOM_ENDPOINT_ADDRESS": "ftp://gw:21"}, "PROCESSOR_EVENTHUB_CUSTOM_ENDPOINT_ADDRESS"),
        ({"PROCESSOR_EVENTHUB_CUSTOM_ENDPOINT_ADDRESS": "sb://gw:port"}, "PROCESSOR_EVENTHUB_CUSTOM_ENDPOINT_ADDRESS"),
        ({"PROCESSOR_TRACING_EXPORTER": "jaeger"}, "PROCESSOR_TRACING_EXPORTER"),
        ({"PROCESSOR_TRACING_OTLP_ENDPOINT": "grpc://collector:4317"}, "PROCESSOR_TRACING_OTLP_ENDPOINT"),
        ({"PROCESSOR_TRACING_CONNECTION_STRING": "https://dc.example.com/"}, "PROCESSOR_TRACING_CONNECTION_STRING"),
        ({"PROCESSOR_TRACING_EXPORTER": "azure_monitor"}, "PROCESSOR_TRACING_CONNECTION_STRING"),
        (
            {"PROCESSOR_EVENTHUB_CONNECTION_STRING": "Endpoint=sb://a/", "PROCESSOR_EVENTHUB_NAMESPACE": "b"},
            "PROCESSOR_EVENTHUB_NAMESPACE",
        ),
    ],
)
def test_bad_values_name_their_variable(env, named):
    with pytest.raises(ConfigError, match=named):
        load_settings(env=env, path=ROOT / "config" / "processor.toml")


def test_unknown_keys_in_the_file_are_refused(tmp_path):
    cfg = tmp_path / "p.toml"
    cfg.write_text("[store]\nuri = 'sqlite:///x'\n")
    with pytest.raises(ConfigError, match=r"\[store\] uri: unknown setting"):
        load_settings(env={}, path=cfg)


@pytest.mark.parametrize(
    "env, named",
    [
        ({"PROCESSOR_CHECKPOINT_EVERY_EVENTS": "５"}, "PROCESSOR_CHECKPOINT_EVERY_EVENTS"),  # full-width five
        ({"PROCESSOR_REORDER_WINDOW": "٢"}, "PROCESSOR_REORDER_WINDOW"),  # Arabic-Indic two
        ({"PROCESSOR_HTTP_ADDRESS": "0.0.0.0:٨٠٨٠"}, "PROCESSOR_HTTP_ADDRESS"),
        ({"PROCESSOR_STARTING_POSITION": "٢٠٢٦-01-01T00:00:00Z"}, "PROCESSOR_STARTING_POSITION"),
    ],
)
def test_numbers_and_times_in_settings_take_ascii_digits_only(env, named):
    with pytest.raises(ConfigError, match=named):
        load_settings(env=env, path=ROOT / "config" / "processor.toml")


def test_a_proxy_password_is_never_echoed():
    with pytest.raises(ConfigError, match="PROCESSOR_EVENTHUB_PROXY") as caught:
        load_settings(
            env={"PROCESSOR_EVENTHUB_PROXY": "ftp://user:hunter2@proxy:21"}, path=ROOT / "config" / "processor.toml"
        )
    assert "hunter2" not in str(caught.value)
    settings = load_settings(
        env={"PROCESSOR_EVENTHUB_PROXY": "http://user:hunter2@proxy:3128"}, path=ROOT / "config" / "processor.toml"
    )
    assert settings.eventhub_proxy and "hunter2" not in repr(settings)


def test_azure_monitor_tracing_takes_the_standard_connection_string_variable_and_never_echoes_a_key():
    path = ROOT / "config" / "processor.toml"
    env = {
        "PROCESSOR_TRACING_EXPORTER": "azure_monitor",
        "APPLICATIONINSIGHTS_CONNECTION_STRING": "InstrumentationKey=k",
    }
    assert load_settings(env=env, path=path).tracing_exporter == "azure_monitor"
    with pytest.raises(ConfigError, match="PROCESSOR_TRACING_CONNECTION_STRING") as caught:
        load_settings(env={"PROCESSOR_TRACING_CONNECTION_STRING": "Key=0000-secret"}, path=path)
    assert "0000-secret" not in str(caught.value)
    settings = load_settings(env={"PROCESSOR_TRACING_CONNECTION_STRING": "InstrumentationKey=0000-secret"}, path=path)
    assert "0000-secret" not in repr(settings)
