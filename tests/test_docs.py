"""README and docs/ cannot drift: their links resolve, their ftlit commands parse, and the settings their config
tables quote are the configs' own."""

import contextlib
import io
import re
import shlex
from pathlib import Path

import pytest
import yaml

from ftlit.cli import main

ROOT = Path(__file__).parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

FENCE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
# a command of the docs: its config, if it names one, must be one of configs/ (not a run's own, written later)
COMMAND = re.compile(r"^ftlit (fit|validate|test|predict)( |$)(?!.*--config (?!configs/))")
# a config table's columns checked against the YAML: the quoted value, and where it is in the config
QUOTED = {"lr": "model.init_args.learning_rate", "batch": "data.init_args.batch_size", "epochs": "trainer.max_epochs"}


def prose(text: str) -> str:
    """The page without its code blocks (links and headings inside them are not rendered)."""
    return FENCE.sub("", text)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, spaces to hyphens, punctuation dropped except hyphens and
    underscores (a link in the heading counts by its text)."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    seen: dict[str, int] = {}
    for line in prose(page.read_text()).splitlines():
        if match := re.match(r"#{1,6} (.+)", line):
            base = slug(match.group(1))
            count = seen.get(base, 0)
            seen[base] = count + 1
            yield base if count == 0 else f"{base}-{count}"


def broken_links(page: Path) -> list[str]:
    broken = []
    for target in LINK.findall(prose(page.read_text())):
        if re.match(r"[a-z]+:", target):  # https:, mailto: — not this repository's
            continue
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        if not file.exists():
            broken.append(f"{target} (no such file)")
        elif anchor and file.suffix == ".md" and anchor not in set(anchors(file)):
            broken.append(f"{target} (no such heading)")
    return broken


def commands(page: Path) -> list[str]:
    """The ``ftlit fit|validate|test|predict …`` commands of the page's code blocks (with a config of configs/)."""
    found = []
    for block in FENCE.findall(page.read_text()):
        for line in block.replace("\\\n", " ").splitlines():
            line = re.sub(r"\s+#\s.*$", "", line).strip()  # a trailing comment
            if COMMAND.match(line) and not re.search(r"--(\w+\.)?help\b", line):  # help prints, parses nothing
                found.append(line)
    return found


def config_rows(page: Path) -> list[dict[str, str]]:
    """The rows of the page's tables whose first column is ``config``, as {column: cell}."""
    rows, header = [], None
    for line in page.read_text().splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")] if line.startswith("|") else None
        if cells is None:
            header = None
        elif header is None and cells[0] == "config":
            header = cells
        elif header and not set(cells[0]) <= set("-: "):
            rows.append(dict(zip(header, cells, strict=False)))
    return rows


def config_name(cell: str) -> str:
    return re.search(r"`(?:configs/)?([\w.]+\.yaml)`", cell).group(1)


def wrong_quotes(page: Path) -> list[str]:
    wrong = []
    for row in config_rows(page):
        config = ROOT / "configs" / config_name(row["config"])
        if not config.is_file():
            wrong.append(f"{config.name}: no such config")
            continue
        settings = yaml.safe_load(config.read_text())
        for column, key in QUOTED.items():
            if column not in row or row[column] in ("", "—"):
                continue
            value = settings
            for part in key.split("."):
                value = value.get(part) if isinstance(value, dict) else None
            if value is None or float(row[column]) != float(value):
                wrong.append(f"{config.name}: {column} {row[column]} in the table, {value} in the file")
    return wrong


def unparsed(lines: list[str]) -> list[str]:
    """The commands that ftlit's own parser refuses (``--print_config``: nothing runs)."""
    failed = []
    for line in lines:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()) as err:
            try:
                main([*shlex.split(line)[1:], "--print_config"])
                code = 0
            except SystemExit as exit_info:
                code = exit_info.code
        if code != 0:
            failed.append(f"{line}: {err.getvalue().strip()[-300:]}")
    return failed


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.stem)
def test_every_relative_link_resolves(page):
    assert broken_links(page) == []


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.stem)
def test_configs_in_tables_exist_and_their_quoted_settings_are_the_files(page):
    assert wrong_quotes(page) == []


def test_the_task_pages_have_config_tables_and_the_docs_have_commands():
    for page in ("classification", "question-answering", "token-classification"):
        assert len(config_rows(ROOT / "docs" / f"{page}.md")) >= 3
    assert len([line for page in PAGES for line in commands(page)]) >= 10


@pytest.mark.slow  # parses some 60 commands: a quarter of a minute
def test_every_ftlit_command_parses():
    lines = sorted({line for page in PAGES for line in commands(page)})  # each distinct command once
    assert unparsed(lines) == []


def test_the_checks_fail_on_a_broken_link_a_missing_config_and_a_wrong_quoted_value(tmp_path):
    page = tmp_path / "docs" / "page.md"
    page.parent.mkdir()
    (tmp_path / "docs" / "other.md").write_text("# Other page\n\n## Its section\n")
    page.write_text(
        "# Page\n\n[fine](other.md#its-section) [no file](missing.md) [no heading](other.md#nowhere)\n\n"
        "| config | lr | batch | epochs |\n|---|---|---|---|\n"
        "| `configs/quickstart.yaml` | 1e-4 | 16 | 1 |\n"
        "| `configs/no_such.yaml` | 1e-4 | 32 | 2 |\n"
        "| `configs/offline_minilm_sst2_lora.yaml` | 1e-3 | 32 | 3 |\n\n"
        "```bash\nftlit fit --config configs/quickstart.yaml --data.max_lenght 64\n```\n"
    )
    assert broken_links(page) == ["missing.md (no such file)", "other.md#nowhere (no such heading)"]
    wrong = wrong_quotes(page)
    assert wrong[0] == "no_such.yaml: no such config"
    assert wrong[1].startswith("offline_minilm_sst2_lora.yaml: lr 1e-3 in the table, 0.005 in the file")
    assert len(wrong) == 2
    assert len(unparsed(commands(page))) == 1
