"""po.toml: every mistake is reported with the file, the key and what was expected."""

from __future__ import annotations

import pytest

from pipeline.config import Config, ConfigError, load_config, parse_config
from pipeline.workspace import WorkspaceError, config_text, init_workspace, locate


def error_of(text: str, source: str = "po.toml") -> str:
    with pytest.raises(ConfigError) as info:
        parse_config(text, source)
    return str(info.value)


# -- values -------------------------------------------------------------------------------


def test_an_empty_file_is_the_default_configuration():
    assert parse_config("") == Config()


def test_out_of_range_value_names_file_key_bound_and_value():
    message = error_of("[baseline]\nthreads = 0\n")
    assert "po.toml: baseline.threads" in message
    assert ">= 1" in message
    assert "got 0" in message


def test_value_above_the_maximum_says_the_maximum():
    message = error_of("[baseline]\nthreads = 65\n")
    assert "po.toml: baseline.threads" in message and "<= 64" in message and "got 65" in message


def test_nested_provider_keys_are_named_with_their_full_path():
    message = error_of("[providers.local]\ntemperature = 5\n")
    assert "po.toml: providers.local.temperature" in message and "<= 2" in message and "got 5" in message
    message = error_of("[providers.local]\nmax_chars = { product_vision = 'long' }\n")
    assert "po.toml: providers.local.max_chars.product_vision" in message and "integer" in message


def test_wrong_type_names_key_expected_type_and_value():
    message = error_of('[baseline]\nthreads = "four"\n')
    assert "po.toml: baseline.threads" in message
    assert "must be a valid integer" in message
    assert "got 'four'" in message
    message = error_of("[data]\ntrain = 5\n")
    assert "po.toml: data.train must be a valid string" in message and "got 5" in message


def test_a_fraction_for_an_integer_is_refused():
    message = error_of("[baseline]\nthreads = 2.5\n")
    assert "po.toml: baseline.threads" in message and "got 2.5" in message


def test_a_scalar_where_a_table_belongs_is_refused():
    message = error_of("baseline = 3\n")
    assert message.startswith("po.toml: baseline must be")
    assert "got 3" in message


def test_provider_kind_must_be_a_known_kind():
    message = error_of('[providers.teacher]\nkind = "gemini"\n')
    assert message == "po.toml: providers.teacher.kind must be one of local, vertex, ollama, openai"


def test_a_remote_provider_names_its_missing_keys():
    message = error_of('[providers.teacher]\nkind = "openai"\nmodel = "m"\n')
    assert "po.toml: providers.teacher.base_url" in message and "required" in message


def test_a_boolean_for_an_integer_is_a_wrong_type():
    message = error_of("[baseline]\nthreads = true\n")
    assert "po.toml: baseline.threads" in message


def test_every_problem_is_reported_one_per_line():
    message = error_of("[baseline]\nthreads = 0\nlimit = 0\nfoo = 1\n")
    lines = message.splitlines()
    assert len(lines) == 3
    assert all(line.startswith("po.toml: ") for line in lines)
    assert any("baseline.threads" in line and ">= 1" in line for line in lines)
    assert any("baseline.limit" in line and ">= 1" in line for line in lines)
    assert "po.toml: unknown key baseline.foo" in lines


# -- keys ---------------------------------------------------------------------------------


def test_unknown_key_names_the_typo():
    message = error_of("[baseline]\nthread = 2\n")
    assert "po.toml: unknown key baseline.thread" in message


@pytest.mark.parametrize(
    "text, key",
    [
        ("colour = 1\n", "colour"),
        ("[data]\ntrian = 'x.jsonl'\n", "data.trian"),
        ("[providers.local]\nadaptor = 'x'\n", "providers.local.adaptor"),
    ],
)
def test_unknown_keys_anywhere_are_named(text, key):
    assert f"unknown key {key}" in error_of(text)


def test_unknown_provider_name_in_baseline_provider():
    message = error_of('[baseline]\nprovider = "vertex"\n')
    assert "po.toml: baseline.provider" in message
    assert "'vertex'" in message
    assert "not configured" in message
    assert "known: local" in message


def test_baseline_provider_may_name_any_configured_provider():
    config = parse_config("[providers.local]\n[providers.gpu]\nmax_batch = 16\n[baseline]\nprovider = 'gpu'\n")
    assert config.provider(config.baseline.provider, key="baseline.provider").max_batch == 16


def test_the_embedded_local_provider_stays_available_beside_configured_ones():
    config = parse_config("[providers.gpu]\nkind = 'local'\ntemperature = 0.5\n")
    assert set(config.providers) == {"local", "gpu"}
    assert config.providers["gpu"].temperature == 0.5


def test_baseline_naming_an_unconfigured_provider_lists_the_known_ones():
    message = error_of("[baseline]\nprovider = 'teacher'\n")
    assert "baseline.provider" in message and "'teacher'" in message and "known: local" in message


# -- the file -----------------------------------------------------------------------------


def test_invalid_toml_says_so_and_gives_the_line():
    message = error_of("[baseline]\nthreads = 2\nlimit = \n")
    assert message.startswith("po.toml: not valid TOML")
    assert "line 3" in message


def test_errors_name_the_source_they_were_given():
    assert error_of("[baseline]\nthreads = 0\n", source="other.toml").startswith("other.toml: baseline.threads")


def test_load_config_names_the_path(tmp_path):
    path = tmp_path / "po.toml"
    path.write_text("[baseline]\nthreads = 0\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert f"{path}: baseline.threads" in str(info.value)


def test_missing_file_names_the_path_and_says_how_to_create_it(tmp_path):
    path = tmp_path / "po.toml"
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert str(path) in message
    assert "not found" in message
    assert "po init" in message


def test_a_file_that_is_not_utf8_is_a_config_error_naming_the_file(tmp_path):
    path = tmp_path / "po.toml"
    path.write_bytes(b"# caf\xe9 (latin-1)\n[baseline]\nthreads = 2\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(path) in str(info.value)


# -- the workspace ------------------------------------------------------------------------


def test_the_template_written_by_init_parses(tmp_path):
    ws = init_workspace(tmp_path / "ws", demo=False)
    assert ws.config_path.exists()
    config = load_config(ws.config_path)
    assert config.baseline.provider == "task"  # the task model: local until a promotion
    assert config.provider("task", key="baseline.provider") == config.providers["local"]
    assert ws.config == config


def test_the_template_shows_the_defaults(tmp_path):
    ws = init_workspace(tmp_path / "ws", demo=False)
    assert load_config(ws.config_path) == Config()


@pytest.mark.parametrize("demo", [False, True])
def test_the_template_with_its_limit_line_uncommented_parses(demo):
    text = config_text(demo).replace("# limit = 10", "limit = 10")
    assert parse_config(text).baseline.limit == 10


def test_the_real_template_keeps_the_teams_targets_and_the_demo_says_why_it_differs():
    assert parse_config(config_text(demo=False)).teacher.min_score == 0.85
    demo = parse_config(config_text(demo=True))
    assert demo.teacher.min_score == 0.55 and demo.teacher.attempts_per_input == 3
    assert "0.17-0.60" in config_text(demo=True)  # the measured range the demo threshold is chosen from


def test_init_creates_the_workspace_layout(tmp_path):
    ws = init_workspace(tmp_path / "ws", demo=False)
    for path in (ws.artifacts_dir, ws.cache_dir, ws.root / "data"):
        assert path.is_dir()
    assert ws.db_path.exists()


def test_init_refuses_to_overwrite_an_existing_po_toml(tmp_path):
    init_workspace(tmp_path / "ws", demo=False)
    (tmp_path / "ws" / "po.toml").write_text("[baseline]\nthreads = 2\n")
    with pytest.raises(WorkspaceError) as info:
        init_workspace(tmp_path / "ws", demo=False)
    assert "already exists" in str(info.value) and "--force" in str(info.value)
    assert load_config(tmp_path / "ws" / "po.toml").baseline.threads == 2
    init_workspace(tmp_path / "ws", demo=False, force=True)
    assert load_config(tmp_path / "ws" / "po.toml").baseline.threads == 4


def test_locate_of_a_directory_without_po_toml_says_to_run_po_init(tmp_path, monkeypatch):
    monkeypatch.delenv("PO_WORKSPACE", raising=False)
    with pytest.raises(WorkspaceError) as info:
        locate(tmp_path)
    assert "po init" in str(info.value)
    assert str(tmp_path) in str(info.value)


def test_locate_finds_an_initialised_workspace(tmp_path, monkeypatch):
    monkeypatch.delenv("PO_WORKSPACE", raising=False)
    ws = init_workspace(tmp_path / "ws", demo=False)
    assert locate(tmp_path / "ws").root == ws.root


def test_locate_honours_PO_WORKSPACE(tmp_path, monkeypatch):
    ws = init_workspace(tmp_path / "ws", demo=False)
    monkeypatch.chdir(tmp_path)  # no ./po-workspace here
    monkeypatch.setenv("PO_WORKSPACE", str(ws.root))
    assert locate(None).root == ws.root


def test_an_explicit_path_wins_over_PO_WORKSPACE(tmp_path, monkeypatch):
    one = init_workspace(tmp_path / "one", demo=False)
    two = init_workspace(tmp_path / "two", demo=False)
    monkeypatch.setenv("PO_WORKSPACE", str(one.root))
    assert locate(two.root).root == two.root


def test_locate_without_path_or_env_uses_po_workspace_in_the_current_directory(tmp_path, monkeypatch):
    monkeypatch.delenv("PO_WORKSPACE", raising=False)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(WorkspaceError) as info:
        locate(None)
    assert "po-workspace" in str(info.value) and "po init" in str(info.value)
    ws = init_workspace(tmp_path / "po-workspace", demo=False)
    assert locate(None).root == ws.root


def test_locate_with_PO_WORKSPACE_pointing_nowhere_names_it(tmp_path, monkeypatch):
    monkeypatch.setenv("PO_WORKSPACE", str(tmp_path / "missing"))
    with pytest.raises(WorkspaceError) as info:
        locate(None)
    assert str(tmp_path / "missing") in str(info.value)
