"""Every shipped config parses, and its header comment shows the command that runs it."""

from pathlib import Path

import pytest
import yaml

from ftlit.cli import build_cli, main
from ftlit.data.loading import data_root

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


OFFLINE = [config for config in CONFIGS if "${FTLIT_DATA}" in config.read_text()]


@pytest.mark.skipif(not data_root().is_dir(), reason="${FTLIT_DATA} (../shared/data) is not beside the project")
@pytest.mark.parametrize("config", OFFLINE, ids=lambda path: path.stem)
def test_offline_configs_find_their_files_under_the_data_root(config, tmp_path):
    cli = build_cli(["--config", str(config), "--trainer.default_root_dir", str(tmp_path)], run=False)
    files = [path for path in cli.datamodule.local_files.values() if path]
    assert files and all(Path(path).is_file() for path in files)
    assert all(path.startswith(str(data_root())) for path in files)
