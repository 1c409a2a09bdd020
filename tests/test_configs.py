"""Every shipped config parses, and its header comment shows the command that runs it."""

from pathlib import Path

import pytest
import yaml

from ftlit.cli import main

CONFIGS = sorted((Path(__file__).parents[1] / "configs").glob("*.yaml"))


def test_configs_exist():
    assert len(CONFIGS) >= 19


@pytest.mark.parametrize("config", CONFIGS, ids=lambda path: path.stem)
def test_config_parses_with_print_config(config, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--config", str(config), "--print_config"])
    assert exit_info.value.code == 0
    parsed = yaml.safe_load(capsys.readouterr().out)
    assert parsed["model"]["init_args"]["model_name_or_path"]
    assert f"#   ftlit fit --config configs/{config.name}" in config.read_text().splitlines()
